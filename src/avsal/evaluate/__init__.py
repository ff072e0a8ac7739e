"""Paper-exact evaluation: the STAViS protocol around the cvzoya saliency metrics.

The metric functions themselves live in :mod:`avsal.metrics`; this package holds what the
protocol adds around them:

* :mod:`avsal.evaluate.resize`: MATLAB's bicubic :func:`imresize` and its fast banded form
  ``resize_to``;
* :mod:`avsal.evaluate.protocol`: the protocol's pure steps: prediction post-processing, frame
  selection, the sAUC other map, per-video seeds, NaN-dropped means (STAViS ``eval_code``;
  ViNet's variant);
* :mod:`avsal.evaluate.readers`: fold lists, the STAViS release layout, the DHF1K layout, the
  per-video ground truth (``VideoGroundTruth``, ``Dhf1kGroundTruth``), prediction folders, DIEM
  raw gaze, MIT1003-style image datasets;
* :mod:`avsal.evaluate.runner`: the per-video runner (``VideoJob`` -> ``evaluate_video`` ->
  ``VideoResult``, ``run_jobs`` over a process pool) and the dataset aggregation;
* :mod:`avsal.evaluate.gaze`: raw gaze (CSV, Andersson, DIEM; DHF1K maps) -> per-frame fixation and
  density maps, and scores beside a centre Gaussian and the inter-observer ceiling (``docs/gaze.md``);
* :mod:`avsal.evaluate.report`: CSV / JSON / Markdown / figures;
* :mod:`avsal.evaluate.command`: the ``avsal evaluate`` command line (``add_parser``, ``run``).

Only :func:`imresize` is imported eagerly; the submodules load on first attribute access.
"""

from avsal.evaluate.resize import imresize

_SUBMODULES = ("resize", "protocol", "readers", "runner", "gaze", "report", "command")

__all__ = ["imresize", *_SUBMODULES]


def __getattr__(name):
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"avsal.evaluate.{name}")
    raise AttributeError(f"module 'avsal.evaluate' has no attribute {name!r}")
