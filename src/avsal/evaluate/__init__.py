"""Paper-exact evaluation: the STAViS protocol around the cvzoya saliency metrics.

The metric functions themselves live in :mod:`avsal.metrics`; this package holds what the
protocol adds around them:

* :mod:`avsal.evaluate.resize`: MATLAB's bicubic :func:`imresize`;
* :mod:`avsal.evaluate.protocol`: prediction post-processing, frame selection, per-video and
  dataset aggregation (STAViS ``eval_code``; ViNet's variant);
* :mod:`avsal.evaluate.readers`: fold lists, the STAViS release layout, prediction folders,
  DIEM raw gaze, MIT1003-style image datasets;
* :mod:`avsal.evaluate.gaze`: raw gaze (CSV, Andersson, DIEM; DHF1K maps) -> per-frame fixation and
  density maps, and scores beside a centre Gaussian and the inter-observer ceiling (``docs/gaze.md``);
* :mod:`avsal.evaluate.report`: CSV / JSON / Markdown / figures;
* :mod:`avsal.evaluate.command`: the ``avsal evaluate`` sub-command (``add_parser``, ``run``).

Only :func:`imresize` is imported eagerly; the submodules load on first attribute access.
"""

from avsal.evaluate.resize import imresize

__all__ = ["imresize", "protocol", "readers", "gaze", "report", "command"]


def __getattr__(name):
    if name in ("protocol", "readers", "gaze", "report", "command"):
        import importlib

        return importlib.import_module(f"avsal.evaluate.{name}")
    raise AttributeError(f"module 'avsal.evaluate' has no attribute {name!r}")
