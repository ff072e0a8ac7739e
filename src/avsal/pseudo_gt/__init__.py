"""Pseudo ground truth for weakly supervised STANet (``docs/stanet.md`` §4).

Upstream produced it with ~90 near-identical MATLAB scripts (``Coarse-Fine&Fusion/*.m``); here it is

* :mod:`avsal.pseudo_gt.fusion`: pure numpy steps (:func:`minmax`, :func:`fuse_cams`, :func:`crop_box`,
  :func:`adaptive_box`, :func:`average_boxes`, :func:`paste_cam`, :func:`temporal_smooth`,
  :func:`sparsify`);
* :mod:`avsal.pseudo_gt.pipeline`: the folder stages :func:`crop_stage` (stage 4, ``avsal pseudo-gt crop``)
  and :func:`finalize_stage` (stage 7, ``avsal pseudo-gt finalize``), see ``docs/weak_pipeline.md``;
* :mod:`avsal.pseudo_gt.command`: the ``pseudo-gt`` sub-command (``add_parser``, ``run``).
"""

from avsal.pseudo_gt.fusion import (adaptive_box, average_boxes, crop_box, fuse_cams, minmax, paste_cam,
                                    sparsify, temporal_smooth)
from avsal.pseudo_gt.pipeline import crop_stage, finalize_stage

__all__ = ["adaptive_box", "average_boxes", "crop_box", "crop_stage", "finalize_stage", "fuse_cams", "minmax",
           "paste_cam", "sparsify", "temporal_smooth"]
