"""The HTML run report: its content from the run's files, and its charts as headless Chromium draws them."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrtempo.analysis import analyze_log, read_metrics, report_html, run_report
from lrtempo.cli import main
from lrtempo.config import ConfigError
from lrtempo.plot._html import _thin

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (.ci/run installs Debian's chromium)")

RUN_CONFIG = {
    "name": "tiny-charlm", "task": "charlm", "seed": 0, "steps": 60,
    "task_options": {"d_model": 16, "n_layer": 1, "n_head": 2, "context": 16, "batch_size": 8, "val_batches": 2},
    "schedule": {"type": "wsd", "peak_lr": 3e-3, "min_lr": 3e-5, "total_steps": 60, "warmup_steps": 10,
                 "decay_steps": 20},
    "optimizer": {"name": "adamw"}, "eval_every": 15, "checkpoint_every": 30,
    "monitor": {"effective_every": 5, "per_layer": True},
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    from lrtempo.train import parse_run_config, train

    out = tmp_path_factory.mktemp("runs")
    train(parse_run_config(RUN_CONFIG), out, progress=False)
    return out / "tiny-charlm"


def _payload(page: str) -> dict:
    m = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', page, re.S)
    assert m, "no data block"
    return json.loads(m.group(1))


def _write_log(folder: Path, rows: list[tuple], extra_header: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "log.csv"
    header = "step,lr,grad_l2_norm,loss" + extra_header
    path.write_text(header + "\n" + "".join(",".join("" if v is None else repr(v) for v in r) + "\n" for r in rows))
    return path


# --- the page's content, without a browser ----------------------------------------------------------------------


def test_the_page_holds_every_logged_value_exactly(run_dir):
    page, report = report_html(run_dir)
    data = _payload(page)
    m = read_metrics(run_dir / "log.csv")
    assert data["steps"] == m["step"].astype(int).tolist()
    charts = {c["id"]: {s["name"]: s for s in c["series"]} for c in data["charts"]}
    assert set(charts) == {"lr", "grad_l2_norm", "loss", "effective_lr"} == set(report.charts)
    for chart, column in [("lr", "lr"), ("grad_l2_norm", "grad_l2_norm"), ("loss", "loss")]:
        assert charts[chart][column]["y"] == m[column].tolist()  # repr floats: bit-exact round trip
    val = m["val_loss"]
    assert charts["loss"]["val_loss"]["x"] == m["step"][np.isfinite(val)].astype(int).tolist()
    assert charts["loss"]["val_loss"]["y"] == val[np.isfinite(val)].tolist()
    assert len(charts["loss"]["val_loss"]["x"]) == 4  # eval at 15, 30, 45 and the end
    eff = m["effective_lr_median"]
    assert charts["effective_lr"]["effective_lr_median"]["y"] == eff[np.isfinite(eff)].tolist()
    analysis = analyze_log(run_dir)
    assert [p["phase"] for p in data["phases"]] == [p["phase"] for p in analysis.phases]
    assert [p["phase"] for p in data["phases"]] == ["warmup", "plateau", "early_decay", "mid_decay", "late_decay"]
    assert data["phases"][1] == {"phase": "plateau", "first_step": 10, "last_step": 39}
    assert [e["step"] for e in data["events"]] == [e["step"] for e in analysis.events]


def test_summary_config_hashes_and_layers_are_on_the_page(run_dir):
    page, _ = report_html(run_dir)
    meta = json.loads((run_dir / "run.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert meta["config_hash"] in page and meta["spec_hash"] in page
    assert "config.yaml's schedule has this hash" in page
    assert "tiny-charlm" in page and "<h3>config.yaml</h3>" in page
    assert f'title="{summary["final_loss"]!r}"' in page
    assert "blocks.0.qkv.weight" in page  # layers.csv, per_layer on


def test_a_config_edited_after_the_run_is_flagged(run_dir, tmp_path):
    copy = tmp_path / "edited"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("checkpoints"))
    cfg = copy / "config.yaml"
    cfg.write_text(cfg.read_text().replace("peak_lr: 0.003", "peak_lr: 0.004"))
    page, _ = report_html(copy)
    assert "edited after the run?" in page


def test_the_page_fetches_nothing_and_escapes_what_it_shows(tmp_path):
    folder = tmp_path / "evil"
    _write_log(folder, [(s, 0.1, 1.0, 2.0 - s / 10) for s in range(10)])
    (folder / "events.jsonl").write_text(json.dumps(
        {"step": 3, "kind": "x</script><script>alert(1)</script>", "message": "<b>bold</b>"}) + "\n")
    (folder / "summary.json").write_text(json.dumps({"status": "<img src=x onerror=alert(1)>"}))
    page, _ = report_html(folder)
    assert "<script>alert(1)" not in page and "<img src=x" not in page and "<b>bold</b>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    data_block = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', page, re.S).group(1)
    assert "<" not in data_block
    assert _payload(page)["events"][0]["kind"] == "x</script><script>alert(1)</script>"
    assert "default-src 'none'" in page
    assert not re.search(r"""\s(?:src|href)\s*=\s*["']?(?:https?:|//)""", page, re.I)
    assert "<link" not in page.lower()


def test_a_bare_csv_gets_a_report_beside_it_and_notes_what_it_lacks(tmp_path, capsys):
    log = _write_log(tmp_path / "foreign", [(s, min(1.0, (s + 1) / 5) * (1 - s / 40), 1.0, 3.0 - s / 20)
                                            for s in range(40)])
    assert main(["report", str(log)]) == 0
    out = capsys.readouterr().out
    assert "no effective rate" in out and "wrote " in out
    page = (log.parent / "log.report.html").read_text()
    data = _payload(page)
    assert [c["id"] for c in data["charts"]] == ["lr", "grad_l2_norm", "loss"]
    assert "phases from the lr column" in page


def test_gaps_stay_gaps(tmp_path):
    rows = [(s, 0.1, 1.0, 2.0) for s in range(10)]
    rows[4] = (4, 0.1, math.nan, math.inf)
    _write_log(tmp_path / "gaps", rows)
    data = _payload(report_html(tmp_path / "gaps")[0])
    loss = next(s for c in data["charts"] for s in c["series"] if s["name"] == "loss")
    assert loss["y"][4] is None and loss["y"][3] == 2.0


def test_a_long_log_is_thinned_but_keeps_its_extremes(tmp_path):
    n, max_rows, buckets = 30_000, 5_000, 500
    steps = np.arange(n)
    rng = np.random.default_rng(0)
    norm = 1 + 0.01 * rng.random(n)
    norm[12_347] = 50.0  # one spike
    loss = 3 - steps / n
    loss[9_999] = 0.5  # one dip
    loss[20_000] = math.nan  # one gap
    folder = tmp_path / "long"
    folder.mkdir()
    (folder / "log.csv").write_text("step,lr,grad_l2_norm,loss\n" + "".join(
        f"{s},{1e-3!r},{g!r},{f!r}\n" for s, g, f in zip(steps.tolist(), norm.tolist(), loss.tolist())))
    page, report = report_html(folder, max_rows=max_rows, buckets=buckets)
    data = _payload(page)
    # per bucket: its first and last row, and the lowest and highest row of each of the 3 dense series
    assert buckets * 2 <= len(data["steps"]) <= buckets * 8 + 2
    assert data["steps"][0] == 0 and data["steps"][-1] == n - 1
    series = {s["name"]: s for c in data["charts"] for s in c["series"]}
    assert series["grad_l2_norm"]["y"][data["steps"].index(12_347)] == 50.0
    assert series["loss"]["y"][data["steps"].index(9_999)] == 0.5
    assert series["loss"]["y"][data["steps"].index(20_000)] is None
    assert any("thinned" in note for note in report.notes)
    # the defaults leave a log of this size whole
    assert len(_payload(report_html(folder)[0])["steps"]) == n


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.integers(1, 40), st.integers(0, 2**32 - 1), st.floats(0, 0.5))
def test_thinning_keeps_each_buckets_first_last_lowest_and_highest(n, buckets, seed, nan_share):
    rng = np.random.default_rng(seed)
    ys = [rng.integers(0, 5, n).astype(float), rng.random(n)]  # small integers: ties, first one wins
    ys[0][rng.random(n) < nan_share] = math.nan
    expected = set()
    owner = np.arange(n) * buckets // n
    for b in np.unique(owner):
        idx = np.flatnonzero(owner == b)
        expected |= {int(idx[0]), int(idx[-1])}
        for y in ys:
            part = y[idx]
            if np.isfinite(part).any():
                expected |= {int(idx[0] + np.nanargmin(part)), int(idx[0] + np.nanargmax(part))}
            expected |= set((idx[~np.isfinite(part)]).tolist())
    assert _thin(n, ys, buckets).tolist() == sorted(expected)


def test_errors_name_the_problem_and_leave_the_old_report(tmp_path, run_dir, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["report", str(run_dir), "-o", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["report", str(run_dir), "-o", str(tmp_path / "no" / "such" / "r.html")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "report.html").write_text("old report")
    (bad / "log.csv").write_text("step,lr,grad_l2_norm,loss\n0,0.1,1.0,oops\n")
    with pytest.raises(ConfigError, match=r"line 2: loss: not a number \(got 'oops'\)"):
        run_report(bad)
    assert (bad / "report.html").read_text() == "old report"
    (bad / "log.csv").write_text("step,lr,grad_l2_norm,loss\n1,0.1,1.0,2.0\n0,0.1,1.0,2.0\n")
    assert main(["report", str(bad)]) == 2
    assert "line 3: step: 0 after 1 goes back to a step no earlier row has" in capsys.readouterr().err
    assert (bad / "report.html").read_text() == "old report"
    assert [p.name for p in bad.iterdir() if p.name.startswith(".")] == []


def test_unreadable_side_files_are_noted_not_fatal(tmp_path):
    folder = tmp_path / "partial"
    _write_log(folder, [(s, 0.1, 1.0, 2.0) for s in range(5)])
    (folder / "summary.json").write_text("{not json")
    (folder / "layers.csv").write_bytes(b"\xff\xfe\x00garbage")
    report = run_report(folder)
    assert any("summary.json is not readable JSON" in n for n in report.notes)
    assert any("layers.csv" in n for n in report.notes)
    assert report.path == folder / "report.html" and report.path.exists()


# --- the page as a browser draws it -------------------------------------------------------------------------------


class _Dom(HTMLParser):
    """The parts of a dumped DOM the checks read: chart svgs, their series, bands, event lines and texts."""

    def __init__(self):
        super().__init__()
        self.charts: dict[str, dict] = {}
        self.body: dict[str, str] = {}
        self.error_hidden = None
        self._chart = None
        self._series = None
        self._text_class = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "div" and a.get("id") == "report-error":
            self.error_hidden = "hidden" in a
        elif tag == "svg" and "data-chart" in a:
            self._chart = {"attrs": a, "series": {}, "bands": [], "events": 0, "texts": []}
            self.charts[a["data-chart"]] = self._chart
        elif self._chart is not None:
            if tag == "g" and "data-series" in a:
                self._series = {"points": int(a["data-points"]), "d": ""}
                self._chart["series"][a["data-series"]] = self._series
            elif tag == "path" and self._series is not None:
                self._series["d"] = a.get("d", "")
            elif tag == "rect" and "band" in (a.get("class") or "").split():
                self._chart["bands"].append(a["data-phase"])
            elif tag == "line" and a.get("class") == "event":
                self._chart["events"] += 1
            elif tag == "text":
                self._text_class = a.get("class", "")

    def handle_endtag(self, tag):
        if tag == "svg":
            self._chart = None
        elif tag == "g":
            self._series = None
        elif tag == "text":
            self._text_class = None

    def handle_data(self, data):
        if self._chart is not None and self._text_class is not None:
            self._chart["texts"].append((self._text_class, data))


def _render(page: Path, tmp_path: Path, fragment: str = "") -> _Dom:
    """Open the page in headless Chromium (its own profile, no network) and parse the DOM after the script ran.

    ``--dump-dom`` prints the DOM once the page has loaded; Chromium may then take many seconds to shut down
    in a sandbox without D-Bus, so the test reads up to ``</html>`` and kills it.
    """
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium-profile'}",
           "--window-size=1280,2000", "--dump-dom", page.resolve().as_uri() + fragment]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    timer = threading.Timer(120, os.killpg, (proc.pid, signal.SIGKILL))
    timer.start()
    out = b""
    try:
        while not out.rstrip().endswith(b"</html>"):
            chunk = proc.stdout.read1(1 << 16)
            if not chunk:
                break
            out += chunk
    finally:
        timer.cancel()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert out.rstrip().endswith(b"</html>"), f"Chromium printed no DOM (exit {proc.returncode})"
    dom = _Dom()
    dom.feed(out.decode("utf-8"))
    assert dom.body.get("data-rendered") == "yes", "the report's script did not finish"
    assert dom.error_hidden is True
    return dom


def _vertices(d: str) -> np.ndarray:
    return np.array([[float(x), float(y)] for x, y in re.findall(r"[ML]([-\d.]+) ([-\d.]+)", d)])


def _to_data(chart: dict, px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map drawn pixels back to (step, value) through the domains the chart says it drew."""
    a = chart["attrs"]
    left, top, width, height = map(float, a["data-plot"].split())
    x0, x1 = map(float, a["data-x-domain"].split())
    y0, y1 = map(float, a["data-y-domain"].split())
    steps = x0 + (px[:, 0] - left) / width * (x1 - x0)
    frac = (top + height - px[:, 1]) / height
    if a["data-y-scale"] == "log":
        return steps, 10 ** (np.log10(y0) + frac * (np.log10(y1) - np.log10(y0)))
    return steps, y0 + frac * (y1 - y0)


@needs_chromium
def test_chromium_draws_every_chart_with_the_runs_data(run_dir, tmp_path):
    report = run_report(run_dir, tmp_path / "report.html")
    dom = _render(report.path, tmp_path)
    m = read_metrics(run_dir / "log.csv")
    n = m["step"].size
    assert set(dom.charts) == {"lr", "grad_l2_norm", "loss", "effective_lr"}
    analysis = analyze_log(run_dir)
    phases = [p["phase"] for p in analysis.phases]
    for name, chart in dom.charts.items():
        labels = [t for c, t in chart["texts"] if "axis-label" in c]
        assert labels[0] == "step", name
        assert chart["bands"] == phases, name  # every phase band on every chart
        assert chart["events"] == len(analysis.events), name
        assert [t for c, t in chart["texts"] if "x-tick" in c], name
        assert [t for c, t in chart["texts"] if "y-tick" in c], name
        assert chart["attrs"]["data-x-domain"] == f"0 {n - 1}"
    assert [t for c, t in dom.charts["lr"]["texts"] if "y-label" in c] == ["lr"]
    assert [t for c, t in dom.charts["loss"]["texts"] if "y-label" in c] == ["loss"]
    assert dom.charts["grad_l2_norm"]["attrs"]["data-y-scale"] in {"log", "linear"}
    assert dom.charts["effective_lr"]["attrs"]["data-y-scale"] == "log"

    # every logged row is a vertex, and the drawing maps back to the logged numbers
    for chart, column in [("lr", "lr"), ("grad_l2_norm", "grad_l2_norm"), ("loss", "loss")]:
        drawn = dom.charts[chart]["series"][column]
        assert drawn["points"] == n
        steps, values = _to_data(dom.charts[chart], _vertices(drawn["d"]))
        np.testing.assert_allclose(steps, m["step"], atol=0.02)
        y0, y1 = map(float, dom.charts[chart]["attrs"]["data-y-domain"].split())
        if dom.charts[chart]["attrs"]["data-y-scale"] == "log":
            np.testing.assert_allclose(values, m[column], rtol=2e-3)
        else:
            np.testing.assert_allclose(values, m[column], atol=2e-4 * (y1 - y0))
    val = m["val_loss"][np.isfinite(m["val_loss"])]
    assert dom.charts["loss"]["series"]["val_loss"]["points"] == val.size
    _, drawn_val = _to_data(dom.charts["loss"], _vertices(dom.charts["loss"]["series"]["val_loss"]["d"]))
    y0, y1 = map(float, dom.charts["loss"]["attrs"]["data-y-domain"].split())
    np.testing.assert_allclose(drawn_val, val, atol=2e-4 * (y1 - y0))
    eff = m["effective_lr_median"][np.isfinite(m["effective_lr_median"]) & (m["effective_lr_median"] > 0)]
    assert dom.charts["effective_lr"]["series"]["effective_lr_median"]["points"] == eff.size
    # the lr chart's axis reaches the peak rate and starts at 0
    y0, y1 = map(float, dom.charts["lr"]["attrs"]["data-y-domain"].split())
    assert y0 == 0 and y1 >= 3e-3


@needs_chromium
def test_chromium_zoom_from_the_address_redraws_every_chart(run_dir, tmp_path):
    report = run_report(run_dir, tmp_path / "report.html")
    dom = _render(report.path, tmp_path, "#zoom=15:35")
    m = read_metrics(run_dir / "log.csv")
    for name, chart in dom.charts.items():
        assert chart["attrs"]["data-x-domain"] == "15 35", name
        assert chart["bands"] == ["plateau"], name  # steps 15..35 lie in the hold at peak
    drawn = dom.charts["loss"]["series"]["loss"]
    assert drawn["points"] == 21 + 2  # the view, and one point either side so the line reaches the edges
    steps, values = _to_data(dom.charts["loss"], _vertices(drawn["d"]))
    np.testing.assert_allclose(steps, np.arange(14, 37), atol=0.02)
    inside = (steps > 14.5) & (steps < 35.5)
    y0, y1 = map(float, dom.charts["loss"]["attrs"]["data-y-domain"].split())
    np.testing.assert_allclose(values[inside], m["loss"][15:36], atol=2e-4 * (y1 - y0))
    assert y0 <= m["loss"][15:36].min() and y1 >= m["loss"][15:36].max()  # the y axis fits the view


@needs_chromium
def test_chromium_draws_a_thinned_long_log_with_its_spike(tmp_path):
    n = 20_000  # more rows than pixels: the page draws the first, lowest, highest and last of each pixel column
    norm = np.full(n, 2.0)
    norm[15_001] = 80.0
    folder = tmp_path / "long"
    folder.mkdir()
    (folder / "log.csv").write_text("step,lr,grad_l2_norm,loss\n" + "".join(
        f"{s},0.001,{g!r},{3 - s / n!r}\n" for s, g in enumerate(norm.tolist())))
    report = run_report(folder)
    dom = _render(report.path, tmp_path)
    chart = dom.charts["grad_l2_norm"]
    drawn = chart["series"]["grad_l2_norm"]
    width = float(chart["attrs"]["data-plot"].split()[2])
    assert drawn["points"] <= 4 * (width + 2)
    steps, values = _to_data(chart, _vertices(drawn["d"]))
    assert values.max() == pytest.approx(80.0, rel=2e-3)
    assert steps[values.argmax()] == pytest.approx(15_001, abs=(n / width) * 1.01)
