"""Offline questions about a schedule or a run: where the compute goes, what happened in a log."""

from ._analyze import Analysis, analysis_png, analyze_log, read_metrics
from ._budget import Budget, compute_budget, format_budget, parse_duration

__all__ = ["Analysis", "Budget", "analysis_png", "analyze_log", "compute_budget", "format_budget",
           "parse_duration", "read_metrics"]
