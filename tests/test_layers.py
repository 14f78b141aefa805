"""The package's layers point one way (docs/architecture.md); no torch or matplotlib on import.

Every module's imports of the project are read from its source, the lazy ones
inside functions included, and each must go to its own package, a package its
layer may use, or a package-level helper module.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).parent.parent / "src" / "lrtempo"

#: what each package may import of the project (besides itself and the package-level helpers); the order of
#: docs/architecture.md: schedules <- config <- {torch, monitor, plot} <- train <- {analysis, integrations} <- cli
MAY_IMPORT: dict[str, set[str]] = {
    "schedules": set(),
    "config": {"schedules"},
    "plot": {"schedules"},  # the view layer: takes what it draws as data
    "torch": {"schedules", "config"},
    "monitor": {"schedules", "config"},  # its settings are a typed config section
    "train": {"schedules", "config", "torch", "monitor", "plot"},
    "analysis": {"schedules", "config", "monitor", "plot"},
    "integrations": {"schedules", "config", "torch", "monitor", "train"},
    "cli": {"schedules", "config", "torch", "monitor", "plot", "train", "analysis", "integrations"},
}
#: package-level modules and what of the project each may import (``lrtempo`` itself: its ``__version__``)
HELPERS: dict[str, set[str]] = {"_atomic": set(), "_chunks": set(), "_progress": set(), "_rundir_schema": set(),
                                "_util": {"schedules"},
                                # the public run directory type: the file helpers below it, and __version__
                                "rundir": {"_atomic", "_rundir_schema", ""},
                                "": {"schedules", "config", "rundir"}}


def _imported(path: Path) -> list[tuple[str, str]]:
    """``(first part under lrtempo, the import as written)`` of every import of the project in ``path``."""
    package = ["lrtempo", *path.relative_to(SRC).parent.parts]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.split(".")[0] == "lrtempo"]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names = [module] if module.split(".")[0] == "lrtempo" else []
            if node.module is None:  # ``from .. import x``: x may be a module
                names = [f"{module}.{a.name}" for a in node.names]
        else:
            continue
        out += [(n.split(".")[1] if n.count(".") else "", ast.unparse(node)) for n in names]
    return out


def _target(name: str) -> str:
    """The package (or helper module, or ``""`` for ``lrtempo`` itself) an import's first part names."""
    if (SRC / name).is_dir() or name in HELPERS:
        return name
    return ""  # ``from lrtempo import __version__``


def _rule(rel: Path) -> tuple[str, set[str]]:
    """The package (or helper module) a file belongs to, and what of the project it may import."""
    own = rel.parts[0] if len(rel.parts) > 1 else "" if rel.stem == "__init__" else rel.stem
    if own == "__main__":  # ``python -m lrtempo``
        return own, {"cli"}
    if own in HELPERS:
        return own, HELPERS[own]
    return own, MAY_IMPORT[own] | (set() if own == "schedules" else set(HELPERS))


def _violations(path: Path) -> list[str]:
    rel = path.relative_to(SRC)
    own, allowed = _rule(rel)
    return [f"{rel}: {text}" for first, text in _imported(path) if _target(first) not in allowed | {own}]


def test_every_package_is_placed_in_the_order():
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()}
    helpers = {p.stem for p in SRC.glob("*.py") if p.stem not in ("__init__", "__main__")}
    assert packages == set(MAY_IMPORT), "a new package: say in MAY_IMPORT (and docs/architecture.md) what it may use"
    assert helpers == set(HELPERS) - {""}


def test_the_order_has_no_cycle():
    done: list[str] = []
    while len(done) < len(MAY_IMPORT):
        ready = [p for p in MAY_IMPORT if p not in done and MAY_IMPORT[p] <= set(done)]
        assert ready, f"a cycle among {set(MAY_IMPORT) - set(done)}"
        done += ready


def test_every_import_of_the_project_follows_the_order():
    bad = [v for path in sorted(SRC.rglob("*.py")) for v in _violations(path)]
    assert bad == []


def test_the_check_sees_lazy_and_relative_imports(tmp_path):
    fake = SRC / "plot" / "_probe_for_test_layers.py"
    fake.write_text("def f():\n    from ..analysis import analyze_log\n    import lrtempo.train\n")
    try:
        assert [v.split(": ")[1] for v in _violations(fake)] == ["from ..analysis import analyze_log",
                                                                  "import lrtempo.train"]
    finally:
        fake.unlink()


def test_import_pulls_in_neither_torch_nor_matplotlib():
    code = ("import sys, lrtempo, lrtempo.config, lrtempo.cli, lrtempo.plot, lrtempo.analysis, lrtempo.integrations; "
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
