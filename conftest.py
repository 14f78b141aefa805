"""Doctest collection: an integration module is imported only when its library is installed."""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("transformers") else ["src/lrtempo/integrations/hf.py"]
