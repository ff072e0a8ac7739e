"""Conversion rules of Liu'20 for the checkpoint engine (:mod:`avsal.models.checkpoints`).

The released ``17_i_video_120_host_207_station_0905_visual_audio_face_modal_cc_0.690_kl_0.8210.pkl`` is a
bare state_dict (no ``module.`` prefix) of upstream ``visual_audio_face_modal_combine_net`` with 71 keys
(docs/liu20.md §Checkpoint). :class:`~avsal.models.liu20.networks.Liu20Net` keeps upstream's parameter
names, so every key maps to itself; the rules still name each upstream module explicitly, so that a key
of any other module is reported as *unexpected* rather than loaded.
"""

from __future__ import annotations

from avsal.models.checkpoints import ConversionRules

#: Upstream module names (parameters keep their names in avsal).
MODULES = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv4_1",
           "flow_conv1", "flow_conv2", "flow_conv3", "flow_deconv5",
           "combine_conv1", "combine_conv2", "combine_conv3", "cell0", "cell1",
           "conv1_3d", "conv2a_3d", "conv2b_3d", "conv3_3d",
           "conv_normal_visual1", "conv_normal_visual2", "conv_normal_audio1", "conv_normal_audio2",
           "conv_normal_face1", "conv_normal_face2", "visual_hmap")


def _network(**cfg):
    from avsal.models.liu20.networks import Liu20Net

    return Liu20Net(**cfg)


#: The rules registered with ``liu20``.
CONVERSION = ConversionRules(
    rename=tuple((rf"({m})\.", r"\1.") for m in MODULES),
    network=_network,
    source="MinglangQiao/visual_audio_saliency released .pkl state_dict (visual_audio_face_modal_combine_net)",
)
