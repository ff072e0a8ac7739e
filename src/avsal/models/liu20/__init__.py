"""Liu et al. (ECCV 2020) visual + audio + face saliency network: network, checkpoint conversion, video inference.

* :mod:`~avsal.models.liu20.networks`: :class:`Liu20Net` (upstream parameter names) and
  :func:`saliency_from_logits`;
* :mod:`~avsal.models.liu20.features`: frames and log-mel audio images;
* :mod:`~avsal.models.liu20.faces`: the GMM face map of the face branch;
* :mod:`~avsal.models.liu20.convert`: the conversion rules of the released ``.pkl``;
* :mod:`~avsal.models.liu20.predictor`: :class:`Liu20VideoModel` (``avsal predict --model liu20``).

Importing this package registers ``liu20``; torch and the networks are imported when first used.
Facts and measurements: ``docs/liu20.md``.
"""

from __future__ import annotations

from dataclasses import fields

from avsal.models.liu20.convert import CONVERSION
from avsal.models.registry import register_model

__all__ = ["WEIGHTS_HELP"]

#: Where Liu'20 weights come from, for error messages.
WEIGHTS_HELP = ("the released 17_i_video_120_host_207_station_0905_visual_audio_face_modal_cc_0.690_kl_0.8210.pkl "
                "(MinglangQiao/visual_audio_saliency README; convert with `avsal convert-weights --model liu20`)")


def _factory(weights=None, **cfg):
    from avsal.models.liu20.networks import Liu20Net

    if weights is None:
        return Liu20Net(**cfg)
    from avsal.models.checkpoints import load_network

    return load_network("liu20", lambda **c: Liu20Net(**c), weights, cfg)


def _video(weights=None, device="cpu", batch_size=12, face_source=None, **cfg):
    from avsal.models.liu20.faces import GMMConfig
    from avsal.models.liu20.networks import Liu20Config
    from avsal.models.liu20.predictor import Liu20InferenceConfig, Liu20VideoModel

    net_fields = {f.name for f in fields(Liu20Config)}
    inf_fields = {f.name for f in fields(Liu20InferenceConfig)}
    unknown = set(cfg) - net_fields - inf_fields
    if unknown:
        raise TypeError(f"unknown liu20 option(s): {', '.join(sorted(unknown))}")
    net = _factory(weights, **{k: v for k, v in cfg.items() if k in net_fields})
    inf = {k: v for k, v in cfg.items() if k in inf_fields}
    if isinstance(inf.get("gmm"), dict):  # from `--set gmm={"sigma_rel": 0.3}`
        inf["gmm"] = GMMConfig(**inf["gmm"])
    if isinstance(inf.get("tracking"), dict):  # from `--set tracking={"detect_every": 1}`
        from avsal.faces import FaceDetectorConfig, FaceTrackConfig, TrackerConfig

        t = dict(inf["tracking"])
        t.update({k: c(**t[k]) for k, c in (("detector", FaceDetectorConfig), ("tracker", TrackerConfig))
                  if isinstance(t.get(k), dict)})
        inf["tracking"] = FaceTrackConfig(**t)
    src = face_source if callable(face_source) else None
    if isinstance(face_source, str):
        inf["face_source"] = face_source
    return Liu20VideoModel(net, Liu20InferenceConfig(device=device, batch_size=batch_size, **inf), face_source=src)


register_model("liu20", factory=_factory, needs_weights=True,
               description="Liu et al. ECCV 2020 visual + audio + face-GMM saliency network", video_factory=_video,
               conversion=CONVERSION, weights_help=WEIGHTS_HELP)
