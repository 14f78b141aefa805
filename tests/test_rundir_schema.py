"""The run directory's file names and log columns are spelled in one place (``lrtempo._rundir_schema`` for the names
and columns, ``lrtempo.rundir`` for the checkpoints' and the kept configs' names), which needs no torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from lrtempo._rundir_schema import EXTRA_COLUMNS, LAYER_COLUMNS, LOG_COLUMNS, MONITOR_COLUMNS, RUN_FILES, SCHEMA_COLUMNS

SRC = Path(__file__).resolve().parents[1] / "src" / "lrtempo"
HOME = (SRC / "_rundir_schema.py", SRC / "rundir.py")
NAMES = {getattr(RUN_FILES, f) for f in RUN_FILES.__dataclass_fields__}
#: the start of a checkpoint's name (``step-00000040.pt``, its temp ``.step-...``), a kept config's, their suffix
NAME_PARTS = ("step-", ".step-", "config.before-step")
TUPLES = (SCHEMA_COLUMNS, EXTRA_COLUMNS, MONITOR_COLUMNS, LAYER_COLUMNS, LAYER_COLUMNS[2:])


def _literal_strings(node: ast.AST) -> tuple[str, ...] | None:
    if isinstance(node, (ast.Tuple, ast.List)) and all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
        return tuple(e.value for e in node.elts)
    return None


def spellings(path: Path) -> list[str]:
    """Where ``path`` spells a run file's name, the layers.csv header, or defines a column list itself.

    Prose (docstrings, messages that mention a name) is not code and is left out; a column list is a
    module-level tuple or list of strings that starts like one of the schema's.
    """
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if (node.value in NAMES or "effective_lr_median,effective_lr_p90" in node.value
                    or node.value.startswith(NAME_PARTS) or node.value == ".pt"):
                found.append(f"{path.name}:{node.lineno}: {node.value!r}")
    for stmt in tree.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
            strings = _literal_strings(stmt.value)
            if strings and any(strings[:len(t)] == t for t in TUPLES):
                found.append(f"{path.name}:{stmt.lineno}: {strings!r}")
    return sorted(found, key=lambda s: int(s.split(":")[1]))


def test_names_and_columns_are_spelled_only_in_the_schema_module():
    found = [s for p in sorted(SRC.rglob("*.py")) if p not in HOME for s in spellings(p)]
    assert found == []


def test_the_check_finds_a_spelling(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('A = run_dir / "log.csv"\nB = ("step", "lr", "grad_l2_norm", "loss", "x")\n'
                   'C = "step,layer,effective_lr_median,effective_lr_p90"\nD = f"see {x}: no log.csv"\n'
                   'E = folder / f"step-{step:08d}.pt"\nF = run_dir / f"config.before-step-{n}.yaml"\n'
                   'G = run_dir / "report.html"\nH = "--step-time"\n')
    assert [s.split(":")[1] for s in spellings(bad)] == ["1", "2", "3", "5", "5", "6", "7"]  # 5: its name and suffix


def test_the_log_columns_are_the_documented_schema():
    assert LOG_COLUMNS == ("step", "lr", "grad_l2_norm", "loss", "val_loss", "tokens", "seconds", "skipped_updates",
                           "samples")
    assert RUN_FILES.per_step == ("log.csv", "events.jsonl", "layers.csv", "reductions.jsonl")


def test_the_schema_module_needs_no_torch():
    code = ("import sys, lrtempo._rundir_schema, lrtempo.rundir, lrtempo.analysis._logfile; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
