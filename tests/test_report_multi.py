"""The multi-run report (``lrtempo report A B ...`` and the page ``lrtempo race`` writes beside its PNG): its data
from the runs' logs, and its charts, smoothing and wall-clock axis as headless Chromium draws them."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import select
import signal
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from lrtempo.analysis import read_metrics, report_html, run_multi_report
from lrtempo.cli import main
from lrtempo.config import load_schedule
from lrtempo.plot._multi import EMA_FORMULA, run_names
from test_report import CHROMIUM, _to_data, _vertices, needs_chromium

RUN = {"task": "charlm", "seed": 0, "steps": 40, "eval_every": 10, "checkpoint_every": 20, "monitor": False,
       "task_options": {"d_model": 16, "n_layer": 1, "n_head": 2, "context": 16, "batch_size": 4, "val_batches": 1,
                        "max_bytes": 100000},
       "schedule": {"type": "wsd", "peak_lr": 3e-3, "min_lr": 3e-5, "total_steps": 40, "warmup_steps": 5,
                    "decay_steps": 10}}


def _payload(page: str) -> dict:
    m = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', page, re.S)
    assert m, "no data block"
    return json.loads(m.group(1))


def _write_log(path: Path, rows: list[tuple], header: str = "step,lr,grad_l2_norm,loss") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "".join(",".join("" if v is None else repr(v) for v in r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A trained run, a cooldown branch of it from step 20 (trained on), and a second run of another seed."""
    torch = pytest.importorskip("torch")
    from lrtempo.train import parse_run_config, train

    out = tmp_path_factory.mktemp("runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains 10x slower with threads contending on a busy machine
    try:
        train(parse_run_config({**RUN, "name": "base"}), out, progress=False)
        train(parse_run_config({**RUN, "name": "other", "seed": 1}), out, progress=False)
        assert main(["branch", str(out / "base"), "--at", "20", "--out", str(out / "cool"), "--cooldown", "10"]) == 0
        assert main(["train", "--resume", str(out / "cool"), "--quiet"]) == 0
    finally:
        torch.set_num_threads(threads)
    return {"base": out / "base", "cool": out / "cool", "other": out / "other"}


def _ema(y: list, a: float) -> list:
    """The page's smoothing written as its closed form: over the finite points so far,
    sum_j a^(k-j) y_j / sum_j a^(k-j) (a gap stays a gap)."""
    out, seen = [], []
    for v in y:
        if v is None:
            out.append(None)
            continue
        seen.append(v)
        w = a ** np.arange(len(seen) - 1, -1, -1, dtype=np.float64)
        out.append(float(np.dot(w, seen) / w.sum()))
    return out


# --- the page's content, without a browser ----------------------------------------------------------------------


def test_the_page_holds_every_runs_logged_values_exactly(runs, tmp_path):
    targets = [runs["base"], runs["cool"], runs["other"]]
    report = run_multi_report(targets, tmp_path / "c.html")
    page = report.path.read_text()
    data = _payload(page)
    assert [r["name"] for r in data["runs"]] == ["base", "cool", "other"] == list(report.runs)
    charts = {c["id"]: c for c in data["charts"]}
    assert list(charts) == ["lr", "grad_l2_norm", "loss", "val_loss"] == list(report.charts)
    for k, target in enumerate(targets):
        m = read_metrics(target / "log.csv")
        block = data["runs"][k]
        assert block["steps"] == m["step"].astype(int).tolist()
        assert block["seconds"] == m["seconds"].tolist()  # the wall-clock axis: the log's own numbers
        for column in ("lr", "grad_l2_norm", "loss"):
            line = next(s for s in charts[column]["series"] if s["run"] == k)
            assert line["x"] is None and line["y"] == m[column].tolist()  # bit-exact round trip
        val = next(s for s in charts["val_loss"]["series"] if s["run"] == k)
        ok = np.isfinite(m["val_loss"])
        assert val["x"] == m["step"][ok].astype(int).tolist() and val["y"] == m["val_loss"][ok].tolist()
        assert val["t"] == m["seconds"][ok].tolist()
        meta = json.loads((target / "run.json").read_text())
        assert meta["spec_hash"][:12] in page and f'title="{meta["spec_hash"]}"' in page
    # the branch is the parent's log up to its point, then its own cooldown
    base, cool = (read_metrics(runs[n] / "log.csv") for n in ("base", "cool"))
    assert cool["loss"][:20].tolist() == base["loss"][:20].tolist() and cool["lr"][25] < base["lr"][25]
    assert charts["lr"]["smooth"] is False and charts["loss"]["smooth"] is True
    assert EMA_FORMULA.split(":")[0] in page.replace("&#x27;", "'")


def test_the_run_table_says_rows_last_step_final_loss_and_lowest_val_loss(tmp_path):
    rows = [(s, 0.1, 1.0, 3.0 - s / 10, 2.5 - s / 20 if s % 4 == 0 else None) for s in range(12)]
    rows[-1] = (11, 0.1, 1.0, math.nan, None)  # the last logged loss is the one before
    a = _write_log(tmp_path / "a.csv", rows, "step,lr,grad_l2_norm,loss,val_loss")
    b = _write_log(tmp_path / "b.csv", [(s, 0.2, 2.0, 5.0) for s in range(3, 8)])
    page = run_multi_report([a, b], tmp_path / "t.html").path.read_text()
    table = page[page.index('<section id="runs">'):page.index('<section id="charts">')]
    cells = [c for r in re.findall(r"<tr>(.*?)</tr>", table) if (c := re.findall(r"<td[^>]*>(.*?)</td>", r))]
    assert [c[2:7] for c in cells] == [
        ["12", "11", f'<span title="{3.0 - 10 / 10!r}">{3.0 - 10 / 10:.6g}</span>',
         f'<span title="{2.5 - 8 / 20!r}">{2.5 - 8 / 20:.6g}</span>', "–"],
        ["5", "7", '<span title="5.0">5</span>', "–", "–"]]
    assert cells[0][7] == "–"  # a bare log records no schedule hash


def test_runs_that_share_a_folder_name_get_distinct_names(tmp_path):
    rows = [(s, 0.1, 1.0, 2.0) for s in range(5)]
    for seed in (0, 1):
        _write_log(tmp_path / f"seed-{seed}" / "stable" / "log.csv", rows)
    _write_log(tmp_path / "seed-0" / "cosine" / "log.csv", rows)
    targets = [tmp_path / "seed-0" / "stable", tmp_path / "seed-1" / "stable", tmp_path / "seed-0" / "cosine"]
    data = _payload(run_multi_report(targets, tmp_path / "n.html").path.read_text())
    assert [r["name"] for r in data["runs"]] == ["seed-0/stable", "seed-1/stable", "cosine"]
    assert run_names([Path("/x/a/log.csv"), Path("/y/a/log.csv"), Path("/z/b/log.csv")]) == \
        ["x/a/log.csv", "y/a/log.csv", "b/log.csv"]


def test_the_page_fetches_nothing_and_escapes_run_names(tmp_path):
    evil = "x<script>alert(1)<"
    _write_log(tmp_path / evil / "log.csv", [(s, 0.1, 1.0, 2.0) for s in range(5)])
    _write_log(tmp_path / "plain" / "log.csv", [(s, 0.1, 1.0, 2.0) for s in range(5)])
    page = run_multi_report([tmp_path / evil, tmp_path / "plain"], tmp_path / "e.html").path.read_text()
    assert "<script>alert(1)" not in page and "x&lt;script&gt;alert(1)&lt;" in page
    block = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', page, re.S).group(1)
    assert "<" not in block and _payload(page)["runs"][0]["name"] == evil
    assert "default-src 'none'" in page and "<link" not in page.lower()
    assert not re.search(r"""\s(?:src|href)\s*=\s*["']?(?:https?:|//)""", page, re.I)


def test_a_long_log_is_thinned_as_the_single_run_report_thins_it(tmp_path):
    n, max_rows, buckets = 12_000, 2_000, 300
    rng = np.random.default_rng(1)
    norm = 1 + 0.01 * rng.random(n)
    norm[7_777] = 40.0
    long = _write_log(tmp_path / "long" / "log.csv", [(s, 1e-3, g, 3 - s / n) for s, g in enumerate(norm.tolist())])
    short = _write_log(tmp_path / "short" / "log.csv", [(s, 1e-3, 1.0, 2.0) for s in range(50)])
    single = _payload(report_html(long.parent, max_rows=max_rows, buckets=buckets)[0])
    report = run_multi_report([long.parent, short.parent], tmp_path / "l.html", max_rows=max_rows, buckets=buckets)
    data = _payload(report.path.read_text())
    assert data["runs"][0]["steps"] == single["steps"] and len(single["steps"]) < n  # the same rows
    assert data["runs"][1]["steps"] == list(range(50))  # a short log stays whole
    norm_line = next(s for c in data["charts"] if c["id"] == "grad_l2_norm" for s in c["series"] if s["run"] == 0)
    assert norm_line["y"][data["runs"][0]["steps"].index(7_777)] == 40.0  # the spike survives
    assert any(note.startswith("long: ") and "thinned" in note for note in report.notes)


def test_one_target_keeps_the_single_run_page(runs, tmp_path, capsys):
    out = tmp_path / "one.html"
    assert main(["report", str(runs["base"]), "-o", str(out)]) == 0
    assert out.read_text() == report_html(runs["base"])[0]
    assert f"wrote {out}: 40 log rows" in capsys.readouterr().out


def test_several_targets_default_to_compare_html_in_the_current_folder(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(runs["base"]), str(runs["other"])]) == 0
    out = capsys.readouterr().out
    assert "wrote compare.html: 2 runs (base, other)" in out
    assert [r["name"] for r in _payload((tmp_path / "compare.html").read_text())["runs"]] == ["base", "other"]


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: d / "missing", "missing: no such file"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "empty: no log.csv (an lrtempo run), trainer_state.json"),
    (lambda d: _write_log(d / "bad.csv", [(0, 0.1, 1.0, "x")]).parent / "bad.csv",
     "bad.csv: line 2: loss: not a number"),
])
def test_a_bad_target_is_one_line_naming_it_and_nothing_is_written(tmp_path, capsys, make, message):
    good = _write_log(tmp_path / "good" / "log.csv", [(s, 0.1, 1.0, 2.0) for s in range(4)]).parent
    bad = make(tmp_path)
    out = tmp_path / "page.html"
    out.write_text("old page")
    assert main(["report", str(good), str(bad), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and str(bad) in err
    assert out.read_text() == "old page"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_refusals_before_reading_leave_everything_as_it_was(tmp_path, capsys):
    a = _write_log(tmp_path / "a" / "log.csv", [(s, 0.1, 1.0, 2.0) for s in range(4)])
    before = a.read_text()
    for argv, message in [
        ([str(a.parent), str(a.parent)], "is given twice"),
        ([str(a.parent), str(tmp_path / "a" / ".." / "a")], "is given twice (also as"),
        ([str(a.parent), str(a), "-o", str(a)], "must end in .html or .htm"),
        ([str(a.parent), str(a), "-o", str(tmp_path)], "is a folder"),
        ([str(a.parent), str(a), "-o", str(tmp_path / "no" / "p.html")], "does not exist"),
    ]:
        assert main(["report", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, argv
    assert a.read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_a_race_writes_the_page_beside_its_png(tmp_path, capsys):
    from lrtempo.train._race import race_preset

    png = tmp_path / "q.png"
    assert main(["race", "quadratic", "--quiet", "--png", str(png)]) == 0
    assert f"wrote {tmp_path / 'q.report.html'}" in capsys.readouterr().out
    data = _payload((tmp_path / "q.report.html").read_text())
    result, _ = race_preset("quadratic")
    assert [r["name"] for r in data["runs"]] == list(result.curves) == ["constant", "cosine", "warmup+cosine"]
    charts = {c["id"]: c for c in data["charts"]}
    for k, name in enumerate(result.curves):
        assert charts["loss"]["series"][k]["y"] == result.curves[name][0]
        assert charts["lr"]["series"][k]["y"] == result.columns[name][0]["lr"]
        assert data["runs"][k]["seconds"] is None  # the quadratic race times nothing
    assert data["x_label"] == "update"
    assert main(["race", "quadratic", "--quiet", "--png", str(png), "--html", str(tmp_path / "q.report.html")]) == 2
    assert "the race's multi-run page goes there" in capsys.readouterr().err


def test_a_training_race_page_has_each_seed_with_rates_norms_and_seconds(tmp_path, capsys):
    pytest.importorskip("torch")
    cfg = tmp_path / "run.yaml"
    cfg.write_text("task: linear\nsteps: 12\nschedule: {type: constant, lr: 0.1}\n")
    other = tmp_path / "cosine.yaml"
    other.write_text("type: cosine\npeak_lr: 0.1\ndecay_steps: 12\n")
    assert main(["race", str(cfg), "--schedule", str(other), "--seeds", "2", "--jobs", "1", "--quiet", "--json",
                 "--png", str(tmp_path / "r.png")]) == 0
    assert json.loads(capsys.readouterr().out)["report"] == str(tmp_path / "r.report.html")
    data = _payload((tmp_path / "r.report.html").read_text())
    assert [r["name"] for r in data["runs"]] == ["run (seed 0)", "run (seed 1)", "cosine (seed 0)", "cosine (seed 1)"]
    for block in data["runs"]:
        assert block["steps"] == list(range(12))
        assert block["seconds"] == sorted(block["seconds"]) and block["seconds"][0] >= 0
    charts = {c["id"]: c for c in data["charts"]}
    assert charts["lr"]["series"][0]["y"] == [0.1] * 12
    assert charts["lr"]["series"][2]["y"] == load_schedule(other).at(np.arange(12)).tolist()  # the rate applied
    assert all(np.isfinite(s["y"]).all() for s in charts["grad_l2_norm"]["series"])


# --- the page as a browser draws it -------------------------------------------------------------------------------


class _Dom(HTMLParser):
    """The multi-run page's charts as drawn: per chart its svg attributes and, per run, its main and raw path."""

    def __init__(self):
        super().__init__()
        self.charts: dict[str, dict] = {}
        self.elements: dict[str, dict] = {}
        self.texts: dict[str, str] = {}
        self.legend: list[str] = []
        self._button = False
        self._chart = self._run = self._text = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.elements[a["id"]] = a
            self._text = a["id"]
        if tag == "button" and "legend-item" in (a.get("class") or ""):
            self._button = True
            self.legend.append("")
        if tag == "svg" and "data-chart" in a:
            self._chart = {"attrs": a, "runs": {}, "xlabel": None}
            self.charts[a["data-chart"]] = self._chart
        elif self._chart is not None and tag == "g" and "data-series" in a:
            self._run = {"points": int(a["data-points"]), "main": "", "raw": None}
            self._chart["runs"][a["data-series"]] = self._run
        elif self._run is not None and tag == "path":
            self._run["main" if "main" in a["class"].split() else "raw"] = a.get("d", "")
        elif self._chart is not None and tag == "text" and "x-label" in (a.get("class") or ""):
            self._text = "x-label"

    def handle_endtag(self, tag):
        if tag == "button":
            self._button = False
        elif tag == "svg":
            self._chart = None
        elif tag == "g":
            self._run = None

    def handle_data(self, data):
        if self._button:
            self.legend[-1] += data
        if self._text == "x-label" and self._chart is not None:
            self._chart["xlabel"] = data
        elif self._text is not None:
            self.texts[self._text] = self.texts.get(self._text, "") + data
        self._text = None


class _Chromium:
    """Headless Chromium (the flags of the one-run report's tests: own profile, no network) driven over its
    DevTools pipe, so a test uses the page's controls as a user does and reads the DOM after each.

    ``--remote-debugging-pipe``: Chromium reads commands on its fd 3 and writes replies on its fd 4, each a JSON
    message ended by a NUL byte; ``Runtime.evaluate`` runs an expression in the page.
    """

    FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--window-size=1280,2000", "--remote-debugging-pipe"]

    def __init__(self, page: Path, profile: Path):
        to_browser, self._commands = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in os.pipe())  # above 4
        self._replies, from_browser = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in os.pipe())

        def pipes() -> None:  # in the child, before exec: the pipe ends on the fds Chromium uses
            os.dup2(to_browser, 3)
            os.dup2(from_browser, 4)

        self.proc = subprocess.Popen([CHROMIUM, *self.FLAGS, f"--user-data-dir={profile}", page.resolve().as_uri()],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=pipes,
                                     pass_fds=(3, 4), start_new_session=True)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer, self._id = b"", 0
        target = next(t for t in self._send("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self._session = self._send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
                                   )["sessionId"]
        self.wait_rendered()

    def _send(self, method: str, params: dict | None = None) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if getattr(self, "_session", None):
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                assert select.select([self._replies], [], [], 60)[0], f"Chromium did not answer {method}"
                chunk = os.read(self._replies, 1 << 16)
                assert chunk, f"Chromium exited (exit {self.proc.poll()})"
                self._buffer += chunk
            line, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(line)
            if reply.get("id") == self._id:
                assert "error" not in reply, reply["error"]
                return reply["result"]

    def js(self, expression: str):
        """The value of ``expression`` evaluated in the page."""
        result = self._send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait_rendered(self) -> None:
        for _ in range(600):
            with contextlib.suppress(AssertionError):  # a document being replaced has no context for a moment
                if self.js("document.body && document.body.getAttribute('data-rendered')") == "yes":
                    return
            time.sleep(0.05)
        raise AssertionError("the page's script did not finish")

    def dom(self) -> _Dom:
        """The DOM as it is now, parsed; the script's error banner still hidden."""
        dom = _Dom()
        dom.feed(self.js("document.documentElement.outerHTML"))
        assert "hidden" in dom.elements["report-error"]
        return dom

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        os.close(self._commands)
        os.close(self._replies)


@contextlib.contextmanager
def _chromium(page: Path, tmp_path: Path):
    browser = _Chromium(page, tmp_path / "chromium-profile")
    try:
        yield browser
    finally:
        browser.close()


#: the page's controls, used as a user does: the slider's input event, a click on a radio button or a legend entry
SET_SMOOTHING = "var s = document.getElementById('smooth'); s.value = '{a}'; s.dispatchEvent(new Event('input'));"
CLICK = "document.querySelector('{selector}').click();"


def _check_line(chart: dict, d: str, x: list, y: list) -> None:
    """The drawn path maps back to the points (x, y) that have a value, within a fraction of a pixel."""
    px, values = _to_data(chart, _vertices(d))
    ok = [i for i, v in enumerate(y) if v is not None]
    assert len(px) == len(ok)
    x0, x1 = map(float, chart["attrs"]["data-x-domain"].split())
    y0, y1 = map(float, chart["attrs"]["data-y-domain"].split())
    width, height = map(float, chart["attrs"]["data-plot"].split()[2:])
    np.testing.assert_allclose(px, np.asarray(x, dtype=float)[ok], atol=0.01 * (x1 - x0) / width)
    if chart["attrs"]["data-y-scale"] == "log":
        np.testing.assert_allclose(values, np.asarray(y, dtype=float)[ok], rtol=2e-3)
    else:
        np.testing.assert_allclose(values, np.asarray(y, dtype=float)[ok], atol=0.01 * (y1 - y0) / height)


@pytest.fixture(scope="module")
def page(runs, tmp_path_factory) -> tuple[Path, list[Path]]:
    """The page of the three runs and a bare CSV without a seconds column."""
    folder = tmp_path_factory.mktemp("page")
    bare = _write_log(folder / "bare.csv", [(s, 0.02, 1.0 + s / 50, 0.9 - s / 100) for s in range(30)])
    targets = [runs["base"], runs["cool"], runs["other"], bare]
    return run_multi_report(targets, folder / "compare.html").path, targets


def _check_step_axis(dom: _Dom, names: list[str], targets: list[Path]) -> None:
    """Every run on the step axis, unsmoothed: each line lands on the logged values."""
    assert set(dom.charts) == {"lr", "grad_l2_norm", "loss", "val_loss"}
    for cid, chart in dom.charts.items():
        assert chart["attrs"]["data-axis"] == "step" and chart["attrs"]["data-smooth"] == "0" and \
            chart["xlabel"] == "step", cid
        assert list(chart["runs"]) == [n for n in names if cid != "val_loss" or n != "bare.csv"], cid
    for name, target in zip(names, targets):
        m = read_metrics(target / "log.csv" if target.is_dir() else target)
        for column in ("lr", "grad_l2_norm", "loss"):
            drawn = dom.charts[column]["runs"][name]
            assert drawn["raw"] is None and drawn["points"] == m["step"].size  # no smoothing: one line
            _check_line(dom.charts[column], drawn["main"], m["step"].tolist(), m[column].tolist())


def _check_smoothed_on_seconds(dom: _Dom, a: float, names: list[str], targets: list[Path]) -> None:
    """The runs with seconds on the wall-clock axis; grad_l2_norm, loss and val_loss smoothed by the page's
    formula over the logged values drawn faintly behind; lr as logged."""
    for cid, chart in dom.charts.items():
        assert chart["attrs"]["data-axis"] == "seconds" and chart["xlabel"] == "wall-clock seconds", cid
        assert list(chart["runs"]) == names, cid  # a run without seconds is off this axis
        assert chart["attrs"]["data-smooth"] == ("0" if cid == "lr" else str(a)), cid
    for name, target in zip(names, targets):
        m = read_metrics(target / "log.csv")
        t = m["seconds"].tolist()
        for column in ("grad_l2_norm", "loss"):
            drawn, chart = dom.charts[column]["runs"][name], dom.charts[column]
            _check_line(chart, drawn["main"], t, _ema(m[column].tolist(), a))  # the EMA, bias-corrected
            _check_line(chart, drawn["raw"], t, m[column].tolist())  # and the values behind it
        ok = np.isfinite(m["val_loss"])
        _check_line(dom.charts["val_loss"], dom.charts["val_loss"]["runs"][name]["main"], m["seconds"][ok].tolist(),
                    _ema(m["val_loss"][ok].tolist(), a))
        lr = dom.charts["lr"]["runs"][name]
        assert lr["raw"] is None
        _check_line(dom.charts["lr"], lr["main"], t, m["lr"].tolist())  # the rate is never smoothed


@needs_chromium
def test_chromium_smoothing_and_axis_controls_redraw_every_run(page, tmp_path):
    path, targets = page
    names = ["base", "cool", "other", "bare.csv"]
    with _chromium(path, tmp_path) as browser:
        dom = browser.dom()
        _check_step_axis(dom, names, targets)
        assert dom.legend == names
        assert dom.texts["axis-note"] == ("on the wall-clock axis, left off: bare.csv (no wall-clock axis: the log "
                                          "has no seconds column)")
        assert "disabled" not in dom.elements["axis-seconds"]

        a = 0.9
        browser.js(SET_SMOOTHING.format(a=a) + CLICK.format(selector="#axis-seconds"))
        dom = browser.dom()
        assert dom.texts["smooth-value"] == "0.9" and browser.js("location.hash") == "#smooth=0.9&axis=seconds"
        _check_smoothed_on_seconds(dom, a, names[:3], targets[:3])

        browser.js(CLICK.format(selector='#run-legend [data-run="1"]'))  # hide "cool"
        assert all(list(c["runs"]) == ["base", "other"] for c in browser.dom().charts.values())

        browser.js("document.body.removeAttribute('data-rendered'); location.reload();")  # the view is in the address
        browser.wait_rendered()
        _check_smoothed_on_seconds(browser.dom(), a, names[:3], targets[:3])

        browser.js(SET_SMOOTHING.format(a=0) + CLICK.format(selector="#axis-step"))
        assert browser.js("location.hash") == ""
        _check_step_axis(browser.dom(), names, targets)


@needs_chromium
def test_chromium_keeps_the_step_axis_for_runs_without_seconds(tmp_path):
    assert main(["race", "quadratic", "--quiet", "--png", str(tmp_path / "q.png")]) == 0
    path = tmp_path / "q.report.html"
    data = _payload(path.read_text())
    loss = next(c for c in data["charts"] if c["id"] == "loss")
    with _chromium(path, tmp_path) as browser:
        dom = browser.dom()
        assert "disabled" in dom.elements["axis-seconds"]
        assert dom.texts["axis-note"] == "wall-clock axis off: no run logs a seconds column"
        assert dom.legend == ["constant", "cosine", "warmup+cosine"]
        browser.js(CLICK.format(selector="#axis-seconds") + SET_SMOOTHING.format(a=0.5))
        chart = browser.dom().charts["loss"]
        assert chart["attrs"]["data-axis"] == "step" and chart["xlabel"] == "update"  # the click changed nothing
        for k, run in enumerate(data["runs"]):
            _check_line(chart, chart["runs"][run["name"]]["main"], run["steps"], _ema(loss["series"][k]["y"], 0.5))
