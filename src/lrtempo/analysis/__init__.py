"""Offline questions about a schedule or a run: where the compute goes, what happened in a log."""

from ._analyze import Analysis, analysis_png, analyze_log, read_metrics
from ._budget import Budget, UpdateClock, compute_budget, format_budget, format_horizon, parse_duration, run_clock
from ._lint import Finding, exit_status, lint_config, lint_mapping
from ._logfile import LogFile, read_events, read_log_file
from ._report import MULTI_REPORT, multi_report_data, report_data, report_html, run_multi_report, run_report

__all__ = ["Analysis", "Budget", "UpdateClock", "run_clock", "Finding", "LogFile", "analysis_png", "analyze_log",
           "compute_budget",
           "exit_status", "format_budget", "format_horizon", "lint_config", "lint_mapping", "parse_duration",
           "read_events", "read_log_file", "read_metrics", "report_data", "report_html", "run_report",
           "MULTI_REPORT", "multi_report_data", "run_multi_report"]
