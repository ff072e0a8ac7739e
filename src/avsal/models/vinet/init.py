"""Initialising ViNet / AViNet parts from init files before training (upstream ``train.py``).

* ``s3d``: ``S3D_kinetics400.pt`` into the S3D backbone (upstream applies it only without ``--use_sound``;
  here it is allowed for both networks);
* ``soundnet``: ``soundnet8_final.pth`` (rules ``vinet-soundnet``) or a STAViS checkpoint (its ``soundnet8``,
  rules ``vinet-soundnet-stavis``, chosen from the keys) into AViNet's ``audionet``;
* ``visual``: ViNet weights (e.g. ``ViNet_DHF1K.pt`` or avsal's own) into AViNet's ``visual_model``
  (upstream ``--load_weight`` with ``--use_sound``).

Every file goes through the checkpoint engine (:func:`avsal.models.checkpoints.convert_state_dict`); a part
must be covered completely, except BatchNorm ``num_batches_tracked`` counters (absent from checkpoints saved
by PyTorch < 0.4.1; they are then left at their current value).
"""

from __future__ import annotations

import os

from torch import nn

from avsal.errors import InputError
from avsal.models.checkpoints import (CheckpointError, ConversionReport, convert_state_dict, load_state_dict_for,
                                      read_checkpoint, unwrap_state_dict)
from avsal.models.vinet.convert import soundnet_rules_for


def _load_part(module: nn.Module, path: str | os.PathLike, rules: str, tiny: bool) -> ConversionReport:
    path = os.fspath(path)
    try:
        obj = read_checkpoint(path)
        if rules == "vinet-soundnet":
            rules = soundnet_rules_for(unwrap_state_dict(obj))
        sd, report = convert_state_dict(obj, rules, {"tiny": tiny}, partial=True)
    except CheckpointError as e:
        raise InputError(path, str(e)) from None
    missing = [k for k in report.missing if not k.endswith("num_batches_tracked")]
    if missing:
        raise InputError(path, f"does not cover the {rules} part: {len(missing)} keys missing, e.g. "
                         f"{', '.join(missing[:5])}")
    module.load_state_dict(sd, strict=False)
    return report


def init_from_files(net: nn.Module, s3d: str | os.PathLike | None = None,
                    soundnet: str | os.PathLike | None = None,
                    visual: str | os.PathLike | None = None) -> dict[str, ConversionReport | None]:
    """Load init files into the parts of a :class:`ViNet` or :class:`AViNet`, in place.

    Args:
        net: the network (its ``config.tiny`` is used for the target shapes).
        s3d: ``S3D_kinetics400.pt`` (or a file with the same keys).
        soundnet: ``soundnet8_final.pth`` or a STAViS checkpoint (AViNet only).
        visual: ViNet weights for AViNet's ``visual_model`` (AViNet only); loaded after ``s3d``.

    Returns:
        ``{"s3d"|"soundnet"|"visual": report}`` for the files given (``None`` for avsal files).

    Raises:
        InputError: unreadable file, a file that does not cover its part, or an AViNet-only file given to ViNet.
    """
    from avsal.models.vinet.networks import AViNet

    tiny = bool(net.config.tiny)
    is_av = isinstance(net, AViNet)
    visual_net = net.visual_model if is_av else net
    reports: dict[str, ConversionReport | None] = {}
    if s3d is not None:
        reports["s3d"] = _load_part(visual_net.backbone, s3d, "vinet-s3d", tiny)
    for name, path in (("soundnet", soundnet), ("visual", visual)):
        if path is not None and not is_av:
            raise InputError(os.fspath(path), f"a {name} init file only applies to avinet")
    if soundnet is not None:
        reports["soundnet"] = _load_part(net.audionet, soundnet, "vinet-soundnet", tiny)
    if visual is not None:
        sd, _cfg, report = load_state_dict_for("vinet", visual, {"tiny": tiny})
        try:
            visual_net.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            raise InputError(os.fspath(visual), f"does not fit vinet: {str(e).splitlines()[0]}") from None
        reports["visual"] = report
    return reports
