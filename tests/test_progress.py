"""Progress on stderr: a line every few seconds off a terminal, a bar with ETA on one, nothing when quiet."""

from __future__ import annotations

import io
import re

from lrtempo._progress import Progress, format_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _progress(tty: bool, enabled: bool = True, total: int = 100, interval: float = 5.0):
    out, clock = io.StringIO(), Clock()
    return Progress("job", total, stream=out, tty=tty, enabled=enabled, interval=interval, clock=clock), out, clock


def test_off_a_terminal_one_line_per_interval_with_a_linear_eta():
    p, out, clock = _progress(tty=False)
    for done in range(1, 101):
        clock.now = done * 0.2  # 0.2 s per unit: a line at 5 s, 10 s, ...
        p.update(done, note=f"unit {done}")
    p.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "job: 25/100 (25%), 5 s elapsed, ETA 15 s; unit 25"
    assert lines[1] == "job: 50/100 (50%), 10 s elapsed, ETA 10 s; unit 50"
    assert len(lines) == 5 and lines[-1] == "job: 100/100 (100%) in 20 s; unit 100"
    assert "\r" not in out.getvalue()


def test_work_done_within_one_interval_writes_nothing():
    p, out, clock = _progress(tty=False)
    clock.now = 4.9
    p.update(100)
    p.close()
    assert out.getvalue() == ""


def test_quiet_writes_nothing_however_long_it_runs():
    for tty in (False, True):
        p, out, clock = _progress(tty=tty, enabled=False)
        for done in range(101):
            clock.now = done * 10.0
            p.update(done)
        p.close()
        assert out.getvalue() == ""


def test_on_a_terminal_a_bar_redrawn_in_place_and_ended_with_a_newline():
    p, out, clock = _progress(tty=True, total=8)
    clock.now = 1.0
    p.update(2, note="a longer note than the next")
    clock.now = 2.0
    p.update(4)
    p.close()
    text = out.getvalue()
    frames = text.split("\r")[1:]
    assert frames[0].startswith("job [######..................] 2/8 1 s elapsed, ETA 3 s  a longer note")
    assert frames[1].startswith("job [############............] 4/8 2 s elapsed, ETA 2 s")
    # a shorter frame is padded with blanks over what the longer one left
    assert len(frames[1]) >= len(frames[0].rstrip())
    assert text.endswith("\n") and text.count("\n") == 1


def test_the_terminal_bar_is_redrawn_at_most_ten_times_a_second():
    p, out, clock = _progress(tty=True, total=1000)
    for done in range(1, 1001):
        clock.now = done * 0.001  # 1 s in all
        p.update(done)
    assert 9 <= out.getvalue().count("\r") <= 11


def test_the_total_can_be_set_once_the_work_is_known():
    p, out, clock = _progress(tty=False, total=1, interval=0.0)
    clock.now = 1.0
    p.update(3, total=12)
    assert out.getvalue() == "job: 3/12 (25%), 1 s elapsed, ETA 3 s\n"


def test_durations_are_short_and_whole():
    assert [format_seconds(s) for s in (0, 0.4, 59.6, 60, 3599, 3600, 86399)] == [
        "0 s", "0 s", "1 min 00 s", "1 min 00 s", "59 min 59 s", "1 h 00 min", "23 h 59 min"]
    assert re.fullmatch(r"\d+ s", format_seconds(-3))
