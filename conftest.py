"""Doctest collection: an integration module is imported only when its library is installed."""

import importlib.util

_NEEDS = {"src/lrtempo/integrations/hf.py": ("transformers",),
          "src/lrtempo/integrations/lightning.py": ("lightning", "pytorch_lightning")}  # any one of them
collect_ignore = [path for path, packages in _NEEDS.items()
                  if not any(importlib.util.find_spec(p) for p in packages)]
