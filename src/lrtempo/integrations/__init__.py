"""lrtempo inside other libraries' trainers: the run record and the monitor, from a callback.

``lrtempo.integrations.hf.LRTempoCallback`` is a ``transformers.TrainerCallback``,
``lrtempo.integrations.lightning.LRTempoCallback`` a Lightning ``Callback``
(docs/integrations.md). Each integration module imports its library when it is
itself imported, so importing this package needs none of them.
"""

__all__: list[str] = []
