"""Dataset preparation for the weakly supervised STANet pipeline (stage 1, ``avsal prepare``).

* :mod:`~avsal.data.prepare`: AVE annotation/split readers, :func:`prepare_clip`, :func:`prepare_ave`,
  :func:`prepare_folder` (they write a *prepared root*, see ``docs/weak_pipeline.md``);
* :mod:`~avsal.data.layout`: the one owner of ``manifest.csv`` and ``pseudo_gt.csv`` (typed rows,
  checked read, atomic write);
* :mod:`~avsal.data.command`: the ``avsal prepare ave|folder`` command line.

Importing this package does not import torch.
"""

from avsal.data.layout import MANIFEST_COLUMNS, ManifestRow
from avsal.data.prepare import (AveAnnotation, ClipFailure, PrepareResult,
                                prepare_ave, prepare_clip, prepare_folder, read_ave_annotations,
                                read_ave_splits, read_labels_csv)

__all__ = ["MANIFEST_COLUMNS", "AveAnnotation", "ClipFailure", "ManifestRow", "PrepareResult", "prepare_ave",
           "prepare_clip", "prepare_folder", "read_ave_annotations", "read_ave_splits", "read_labels_csv"]
