"""Views of schedules and runs: text plots for the terminal, PNG files and the HTML run report."""

from ._html import Report, report_html, run_report
from ._png import MissingDependency, png_plot
from ._text import column_ranges, text_plot

__all__ = ["MissingDependency", "Report", "column_ranges", "png_plot", "report_html", "run_report", "text_plot"]
