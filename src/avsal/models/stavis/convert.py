"""Conversion rules from upstream STAViS checkpoints to :class:`~avsal.models.stavis.networks.Stavis`.

Upstream files (``docs/stavis.md`` §Checkpoints): ``visual_split{1,2,3}_save_60.pth`` and
``audiovisual_split{1,2,3}_save_60.pth`` hold ``{'epoch', 'arch': 'resnet-50', 'state_dict': <'module.'
keys>, 'optimizer_global', 'optimizer_sal', 'optimizer_sound', 'optimizer_fusion'}``; the inits
``resnet-50-kinetics.pth`` (Hara et al., ``module.`` keys, with ``layer4``/``fc``) and ``soundnet8.pth`` (a bare
state dict, ``module.soundnet8.N`` keys). The engine in :mod:`avsal.models.checkpoints` unwraps them (``module.``,
``state_dict``; non-tensor entries and optimizers ignored) and applies the rules below (first match wins).

Upstream → avsal names: ``score_dsn.i.{side_prep, score_dsn, upscale, upscale_}`` →
``dsam.i.{side_prep, score, side_upsample, score_upsample}``; ``soundnet8.{0,1,4,5,8,9,11,12,14,15,18,19,21,22}`` →
``soundnet.{conv1,bn1,…,conv7,bn7}``; ``fusion3.{affine_rgb, affine_audio, w_a_rgb}`` →
``av_fusion.{visual_proj, audio_proj, bilinear}``; ``fuseav`` → ``fuse_av``; the trunk keeps its names.
Both upstream variants define every module, so each checkpoint holds the keys of the other variant too:
the visual model drops ``fuseav``/``soundnet8``/``fusion3`` (random-init in the visual checkpoint), the AV model
drops ``fuse`` and the layers its forward never uses (``score_dsn.i.upscale_``, ``score_dsn.3.score_dsn``); these
are reported as *dropped*.
"""

from __future__ import annotations

from avsal.models.checkpoints import ConversionRules

#: SoundNet-8 ``nn.Sequential`` indices of the conv and BatchNorm layers (``docs/stavis.md`` §SoundNet).
SOUNDNET_INDICES = ((0, 1), (4, 5), (8, 9), (11, 12), (14, 15), (18, 19), (21, 22))

_TRUNK = ((r"conv1\.", "conv1."), (r"bn1\.", "bn1."), (r"layer([123])\.", r"layer\1."))
_DSAM = ((r"score_dsn\.(\d)\.side_prep\.", r"dsam.\1.side_prep."),
         (r"score_dsn\.(\d)\.score_dsn\.", r"dsam.\1.score."),
         (r"score_dsn\.(\d)\.upscale_\.", r"dsam.\1.score_upsample."),
         (r"score_dsn\.(\d)\.upscale\.", r"dsam.\1.side_upsample."))
_SOUND = tuple(rule for i, (c, b) in enumerate(SOUNDNET_INDICES, start=1)
               for rule in ((rf"soundnet8\.{c}\.", f"soundnet.conv{i}."), (rf"soundnet8\.{b}\.", f"soundnet.bn{i}.")))
_FUSION = ((r"fusion3\.affine_rgb\.", "av_fusion.visual_proj."), (r"fusion3\.affine_audio\.", "av_fusion.audio_proj."),
           (r"fusion3\.w_a_rgb\.", "av_fusion.bilinear."), (r"fuseav\.", "fuse_av."))


def _network(variant: str):
    def build(**cfg):
        from avsal.models.stavis.networks import Stavis, StavisConfig

        return Stavis(StavisConfig(**{**cfg, "variant": variant}))
    return build


#: ``stavis-av``: everything but the visual read-out ``fuse``, the side-output deconvolutions (``upscale_``; no deep
#: supervision in AV) and the fourth DSAM's score (its attention is never applied).
STAVIS_AV_RULES = ConversionRules(rename=_TRUNK + _DSAM + _SOUND + _FUSION,
                                  dropped=(r"fuse\.", r"score_dsn\.\d\.upscale_\.", r"score_dsn\.3\.score_dsn\."), network=_network("av"),
                                  source="STAViS audiovisual_split{1,2,3}_save_60.pth (atsiami/STAViS)")
#: ``stavis-visual``: trunk, DSAMs and ``fuse``; the unused audio branch and AV read-out are dropped.
STAVIS_VISUAL_RULES = ConversionRules(rename=_TRUNK + _DSAM + ((r"fuse\.", "fuse."),),
                                      dropped=(r"fuseav\.", r"soundnet8\.", r"fusion3\."),
                                      network=_network("visual"),
                                      source="STAViS visual_split{1,2,3}_save_60.pth (atsiami/STAViS)")
#: ``stavis-backbone``: ``resnet-50-kinetics.pth`` (Hara et al.) as an init of the trunk (partial conversion);
#: its ``layer4``/``fc`` are dropped, as upstream's ``strict=0`` load does.
STAVIS_BACKBONE_RULES = ConversionRules(rename=_TRUNK, dropped=(r"layer4\.", r"fc\."), network=_network("visual"),
                                       source="resnet-50-kinetics.pth (Hara et al. 3D-ResNets-PyTorch)")
#: ``soundnet8``: ``soundnet8.pth`` as an init of the audio branch (partial conversion).
SOUNDNET8_RULES = ConversionRules(rename=_SOUND, network=_network("av"),
                                  source="soundnet8.pth (STAViS release; SoundNet-8 in the (1, k) layout)")

