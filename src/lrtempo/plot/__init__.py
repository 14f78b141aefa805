"""Views of schedules: text plots for the terminal and PNG files."""

from ._png import MissingDependency, png_plot
from ._text import column_ranges, text_plot

__all__ = ["MissingDependency", "column_ranges", "png_plot", "text_plot"]
