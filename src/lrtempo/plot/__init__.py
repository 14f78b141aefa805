"""Views of schedules and runs: text plots, PNG files and the HTML run reports (one run, or several overlaid).

The view layer: every function here takes what it draws (a schedule, a log's
columns, phases and events as plain data) and imports nothing of
``lrtempo.analysis`` or ``lrtempo.train``; those read and analyse, then call in
here. See docs/architecture.md.
"""

from .._util import MissingDependency
from ._html import BUCKETS, MAX_ROWS, Report, ReportData, RunRecord, render_report
from ._multi import MultiReport, MultiRun, render_multi_report, run_names
from ._png import PHASE_COLORS, log_png, png_plot, range_test_png
from ._race import race_png
from ._text import column_ranges, text_plot

__all__ = ["BUCKETS", "MAX_ROWS", "PHASE_COLORS", "MissingDependency", "MultiReport", "MultiRun", "Report",
           "ReportData", "RunRecord", "column_ranges", "log_png", "png_plot", "race_png", "range_test_png",
           "render_multi_report", "render_report", "run_names", "text_plot"]
