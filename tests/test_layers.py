"""DESIGN §3: schedules/ imports nothing else of the project; no torch or matplotlib on import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).parent.parent / "src" / "lrtempo"


def test_import_pulls_in_neither_torch_nor_matplotlib():
    code = ("import sys, lrtempo, lrtempo.config, lrtempo.cli, lrtempo.plot; "
            "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_schedules_layer_imports_only_itself():
    for path in (SRC / "schedules").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                depth = len(path.relative_to(SRC / "schedules").parts) - 1
                assert node.level <= depth + 1, f"{path.name} imports outside schedules/: {ast.unparse(node)}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in ("torch", "lrtempo", "matplotlib") for n in names), path
