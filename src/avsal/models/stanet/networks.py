"""The four STANet networks: S, SA, ST (class-activation branches) and STA (the saliency network).

Wang, Zhang, Li, Wang, Lu, "From Semantic Categorization to Fixation Prediction: Weakly Supervised
Audio-Visual Saliency Prediction", CVPR 2021. Upstream code: guotaowang/STANet (``S/Smodel.py``,
``SA/SAmodel.py``, ``ST/STModel.py``, ``STANet_train&test/STAmodel.py``). Layer-by-layer description:
``docs/stanet.md`` §2.

Calling conventions (all float32 unless autocast is used):

* frames are ImageNet-normalised RGB; a triplet is ``[B, 3, 3, H, W]`` ordered **(t, t−1, t+1)** as
  upstream; audio is the 81×199 log-spectrogram of one second (:func:`avsal.io.audio.stft_features`),
  ``[B, 81, 199]`` per frame or ``[B, 3, 81, 199]`` for a triplet in the same order;
* S and SA take one frame ``[B, 3, H, W]`` (SA also ``[B, 81, 199]``);
* each network returns the same outputs, in the same order, as its upstream counterpart (see each
  ``forward``). Every network runs at any input size (upstream ST only at 256²).

Upstream defects are named switches (:class:`STANetConfig`); modules that upstream defines but never
uses are not built (their checkpoint keys are reported as dropped by the converter).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from avsal.models.backbones import AudioResNet, resnext101_32x8d
from avsal.models.stanet.layers import (AudioQueryMask, AVFusion, ConvGRUCell, SelfAttention, STRefine,
                                        init_heads, stack_frames)

#: The 28 AVE categories in upstream class-id order (sorted folder names; ``docs/stanet.md`` §1).
AVE_CLASSES = (
    "Accordion", "Acoustic guitar", "Baby cry, infant cry", "Banjo", "Bark", "Bus", "Cat", "Chainsaw",
    "Church bell", "Clock", "Female speech, woman speaking", "Fixed-wing aircraft, airplane", "Flute",
    "Frying (food)", "Goat", "Helicopter", "Horse", "Male speech, man speaking", "Mandolin", "Motorcycle",
    "Race car, auto racing", "Rodents, rats, mice", "Shofar", "Toilet flush", "Train horn", "Truck",
    "Ukulele", "Violin, fiddle")

#: Names of the ways SA can attend to audio. ``"avfusion"`` (default): the inferred fix for upstream SA,
#: which calls fusion layers it never defines (``docs/stanet.md`` §2.3): STA's AVfusion on the 2048-channel layer4
#: with a 128→28→1 gate, as in upstream ``SA+/modelCGCN.py``. ``"audio_query"``: avsal's audio-conditioned
#: mask (:class:`~avsal.models.stanet.layers.AudioQueryMask`), which can single out the sounding one of
#: two objects where AVfusion cannot (``docs/weak_pipeline.md``, "Does SA use the audio?").
SA_FUSIONS = ("avfusion", "audio_query")


@dataclass(frozen=True)
class STANetConfig:
    """Configuration shared by the four networks.

    Attributes:
        num_classes: categories of the CAM branches (28 for AVE).
        tiny: tiny backbones (same topology, few channels) for tests.
        temporal_stack: ``"upstream"`` (default; the channel/time-mixing ``.view`` that official
            checkpoints depend on) or ``"permute"`` (the evident intent); see
            :func:`avsal.models.stanet.layers.stack_frames`.
        sa_fusion: SA's audio-visual fusion, one of :data:`SA_FUSIONS` (default ``"avfusion"``, upstream).
        st_channels: width of the 3×3 CAM head of SA/ST (2048 at full size).
        sta_channels: width of STA's reduced features (32).
    """

    num_classes: int = 28
    tiny: bool = False
    temporal_stack: str = "upstream"
    sa_fusion: str = "avfusion"
    st_channels: int | None = None
    sta_channels: int = 32

    def to_dict(self) -> dict:
        return asdict(self)


def _gap(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(2, 3))


def _frames_first(t: torch.Tensor) -> torch.Tensor:
    """``[B, 3, ...]`` → ``[3B, ...]`` with the three frames as consecutive batch blocks."""
    return t.transpose(0, 1).reshape(-1, *t.shape[2:])


def _per_block(fn, x: torch.Tensor, blocks: int, training: bool):
    """Apply ``fn`` to ``x`` (``blocks`` stacked batches). In training mode each block runs separately, so
    BatchNorm sees the same batches as upstream (one frame position at a time); in eval mode, together."""
    if not training:
        return fn(x)
    return torch.cat([fn(chunk) for chunk in x.chunk(blocks)])


def _cam_head(cin: int, hidden: int, num_classes: int) -> nn.Sequential:
    """Three 3×3 conv + ReLU then 1×1 to the classes (upstream ``extra_convs`` / ``extra_video_d``)."""
    return nn.Sequential(
        nn.Conv2d(cin, hidden, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(hidden, num_classes, 1))


class _Base(nn.Module):
    """Shared config handling; ``head_modules()`` are the new (non-backbone) layers."""

    def __init__(self, config: STANetConfig | None, overrides: dict):
        super().__init__()
        cfg = config or STANetConfig()
        if overrides:
            cfg = STANetConfig(**{**asdict(cfg), **overrides})
        if cfg.temporal_stack not in ("upstream", "permute"):
            raise ValueError(f"temporal_stack must be 'upstream' or 'permute', got {cfg.temporal_stack!r}")
        if cfg.sa_fusion not in SA_FUSIONS:
            raise ValueError(f"sa_fusion must be one of {SA_FUSIONS}, got {cfg.sa_fusion!r}")
        self.config = cfg

    def head_modules(self) -> list[nn.Module]:
        """The new (non-backbone) layers: those upstream names ``extra_*`` and initialises N(0, 0.01)."""
        return [m for n, m in self.named_children() if n not in ("backbone", "audio_net")]

    def _init_heads(self) -> None:
        for m in self.head_modules():
            init_heads(m)


class SNet(_Base):
    """S: spatial class-activation branch (upstream ``SNetModel``; 58,033,344 parameters at full size).

    layer3 → 1×1 to the classes (x1); ``x2 = GRU(1×1([x1, SelfAtt(x1)]), x1)``.

    ``forward(frame [B, 3, H, W])`` returns ``(logits_raw [B, K], logits_fused [B, K], map_raw [B, K, h, w],
    map_fused [B, K, h, w])`` with ``h = ⌈H/16⌉`` (upstream order: x1ss, x2ss, map_1, map_2).
    """

    def __init__(self, config: STANetConfig | None = None, **overrides):
        super().__init__(config, overrides)
        k = self.config.num_classes
        self.classifier = nn.Conv2d(self._c3(), k, 1)
        self.fusion = nn.Conv2d(2 * k, k, 1)
        self.gru = ConvGRUCell(k)
        self.self_att = SelfAttention(k)
        self._init_heads()
        self.backbone = resnext101_32x8d(tiny=self.config.tiny, num_classes=0, stages=3)

    def _c3(self) -> int:
        return 128 if self.config.tiny else 1024

    def forward(self, frame: torch.Tensor):
        x1 = self.classifier(self.backbone.features(frame, upto=3)[-1])
        x2 = self.gru(self.fusion(torch.cat([x1, self.self_att(x1)], 1)), x1)
        return _gap(x1), _gap(x2), x1, x2


class SANet(_Base):
    """SA: audio-visual class-activation branch (upstream ``SANetModel`` with the named fusion fix).

    layer4 → CAM head (x1); ``x2 = GRU(1×1([relu(x1 + SelfAtt(x1)), relu(x1 + x1 ⊙ AV(a, layer4))]), x1)``.
    With ``sa_fusion="audio_query"`` the mask is ``AV = AudioQueryMask(a, x1)`` (the sound matched against
    the class maps x1 at every position) and the GRU's state is the gated map ``x1 ⊙ AV`` instead of x1, so
    the fused logits see the sounding object's evidence; with upstream's GRU state x1 the fused logits stay
    close to the visual-only raw ones (``docs/weak_pipeline.md``, "Does SA use the audio?").

    ``forward(frame [B, 3, H, W], audio [B, 81, 199])`` returns ``(logits_raw, logits_fused, map_raw,
    map_fused)`` as :class:`SNet`, maps at ``⌈H/32⌉``.
    """

    def __init__(self, config: STANetConfig | None = None, **overrides):
        super().__init__(config, overrides)
        cfg = self.config
        k = cfg.num_classes
        c4 = 256 if cfg.tiny else 2048
        hidden = cfg.st_channels or c4
        self.audio_net = AudioResNet(tiny=cfg.tiny, num_classes=0)
        self.cam_head = _cam_head(c4, hidden, k)
        self.self_att = SelfAttention(k)
        if cfg.sa_fusion == "avfusion":
            self.av_fusion = AVFusion(c4, self.audio_net.out_dim, dim=128, hidden=k)
        else:  # matches the sound against the class maps x1
            self.av_fusion = AudioQueryMask(k, self.audio_net.out_dim, dim=128)
        self.fusion = nn.Conv2d(2 * k, k, 1)
        self.gru = ConvGRUCell(k)
        self._init_heads()
        self.backbone = resnext101_32x8d(tiny=cfg.tiny, num_classes=0)

    def forward(self, frame: torch.Tensor, audio: torch.Tensor):
        a = self.audio_net.embed(audio.unsqueeze(1))
        v = self.backbone.features(frame)[-1]
        x1 = self.cam_head(v)
        if self.config.sa_fusion == "avfusion":
            av = self.av_fusion(a, v)
            state = x1
        else:  # audio_query: the mask follows the sound over the class maps and gates the GRU's state
            av = self.av_fusion(a, x1)
            state = x1 * av
        fused = torch.cat([F.relu(x1 + self.self_att(x1)), F.relu(x1 + x1 * av)], 1)
        x2 = self.gru(self.fusion(fused), state)
        return _gap(x1), _gap(x2), x1, x2


class STNet(_Base):
    """ST: spatio-temporal class-activation branch (upstream ``STNetModel``; 200,089,188 parameters).

    Each frame: layer4 → CAM head (x_k). For each target k the three maps are stacked in upstream's order
    (t: (t−1, t, t+1); t−1: (t, t−1, t+1); t+1: (t, t+1, t−1)), refined by :class:`STRefine`, and
    ``fused_k = GRU(3×3([relu(x + SelfAtt(x)), relu(x + x ⊙ σ(refine))]), x)``.

    ``forward(frames [B, 3, 3, H, W])`` in order (t, t−1, t+1) returns
    ``(raw_t, fused_t, raw_{t−1}, fused_{t−1}, raw_{t+1}, fused_{t+1}, map_raw_t, map_fused_t)`` (logits
    ``[B, K]``, maps ``[B, K, ⌈H/32⌉, ⌈W/32⌉]``) as upstream (x1ss, x1sss, x2ss, x2sss, x3ss, x3sss, map_1,
    map_all_1).
    """

    def __init__(self, config: STANetConfig | None = None, **overrides):
        super().__init__(config, overrides)
        cfg = self.config
        k = cfg.num_classes
        c4 = 256 if cfg.tiny else 2048
        self.cam_head = _cam_head(c4, cfg.st_channels or c4, k)
        self.fusion = nn.Conv2d(2 * k, k, 3, padding=1)
        self.gru = ConvGRUCell(k)
        self.self_att = SelfAttention(k)
        self.st_refine = STRefine(k)
        self._init_heads()
        self.backbone = resnext101_32x8d(tiny=cfg.tiny, num_classes=0)

    def _fuse(self, x: torch.Tensor, stacked: torch.Tensor) -> torch.Tensor:
        st = torch.sigmoid(self.st_refine(stacked))
        f = self.fusion(torch.cat([F.relu(x + self.self_att(x)), F.relu(x + x * st)], 1))
        return self.gru(f, x)

    def forward(self, frames: torch.Tensor):
        b = frames.shape[0]
        x = _per_block(lambda f: self.cam_head(self.backbone.features(f)[-1]), _frames_first(frames), 3,
                       self.training)
        x = x.view(3, b, *x.shape[1:])
        x1, x2, x3 = x[0], x[1], x[2]
        mode = self.config.temporal_stack
        f1 = self._fuse(x1, stack_frames(x2, x1, x3, mode))
        f2 = self._fuse(x2, stack_frames(x1, x2, x3, mode))
        f3 = self._fuse(x3, stack_frames(x1, x3, x2, mode))
        return _gap(x1), _gap(f1), _gap(x2), _gap(f2), _gap(x3), _gap(f3), x1, f1


@dataclass
class FrameFeatures:
    """What STA computes once per frame and reuses in every triplet (see :meth:`STANet.encode`).

    Attributes:
        s0: ``[N, 32, ⌈H/8⌉, ⌈W/8⌉]`` reduced layer2.
        s1: ``[N, 32, ⌈H/16⌉, ⌈W/16⌉]`` reduced layer3.
        x: ``[N, 32, ⌈H/32⌉, ⌈W/32⌉]`` reduced layer4.
        av: ``[N, 1, ⌈H/32⌉, ⌈W/32⌉]`` audio-visual mask.
    """

    s0: torch.Tensor
    s1: torch.Tensor
    x: torch.Tensor
    av: torch.Tensor

    def index(self, idx) -> "FrameFeatures":
        """The features of a subset of the batch (``idx``: an index, slice or index tensor)."""
        return FrameFeatures(self.s0[idx], self.s1[idx], self.x[idx], self.av[idx])


class STANet(_Base):
    """STA: the audio-visual saliency network (upstream ``STANetModel``; 99,715,827 parameters used).

    Per frame (:meth:`encode`): layer2/3/4 reduced to 32 channels (s0, s1, x) and the AV mask from the
    audio embedding and layer4. Per target frame (:meth:`decode`): the ST mask from the stacked triplet,
    ``h = GRU(3×3([relu(x + SelfAtt(x)), relu(x + x ⊙ σ(ST)), relu(x + x ⊙ AV)]), x)``, then a two-stage
    decoder with skip connections to s1 (stride 16) and s0 (stride 8); two 1×1 read-outs, bilinearly
    upsampled to the input size (logits).

    ``forward(frames [B, 3, 3, H, W], audio [B, 3, 81, 199])`` (order (t, t−1, t+1)) returns the 6 logit maps
    ``(f0_1, f0_0, f1_1, f1_0, f2_0, f2_1)``, each ``[B, 1, H, W]``, in upstream order: ``fk_0`` is frame k's
    finest (stride-8) read-out, ``fk_1`` its stride-16 one.
    """

    def __init__(self, config: STANetConfig | None = None, **overrides):
        super().__init__(config, overrides)
        cfg = self.config
        c = cfg.sta_channels
        c2, c3, c4 = (64, 128, 256) if cfg.tiny else (512, 1024, 2048)
        self.audio_net = AudioResNet(tiny=cfg.tiny, num_classes=0)
        self.reduce = nn.Conv2d(c4, c, 1)
        self.reduce1 = nn.Conv2d(c3, c, 1)
        self.reduce0 = nn.Conv2d(c2, c, 1)
        self.av_fusion = AVFusion(c4, self.audio_net.out_dim, dim=128, hidden=c)
        self.self_att = SelfAttention(c)
        self.st_refine = STRefine(c)
        self.fusion = nn.Conv2d(3 * c, c, 3, padding=1)
        self.gru = ConvGRUCell(c)
        self.refine1 = nn.Conv2d(2 * c, c, 3, padding=1)
        self.refine0 = nn.Conv2d(2 * c, c, 3, padding=1)
        self.out1 = nn.Conv2d(c, 1, 1)
        self.out0 = nn.Conv2d(c, 1, 1)
        self._init_heads()
        self.backbone = resnext101_32x8d(tiny=cfg.tiny, num_classes=0)

    def encode(self, frames: torch.Tensor, audio: torch.Tensor) -> FrameFeatures:
        """Per-frame features, computed once per frame.

        Args:
            frames: ``[N, 3, H, W]`` ImageNet-normalised.
            audio: ``[N, 81, 199]`` log-spectrograms of the frames' one-second windows.
        """
        l2, l3, l4 = self.backbone.features(frames)
        a = self.audio_net.embed(audio.unsqueeze(1))
        return FrameFeatures(self.reduce0(l2), self.reduce1(l3), self.reduce(l4), self.av_fusion(a, l4))

    def decode(self, target: FrameFeatures, stacked: torch.Tensor, size) -> tuple[torch.Tensor, torch.Tensor]:
        """Saliency logits of one target frame.

        Args:
            target: the target frame's features (batch ``B``).
            stacked: ``[B, 32, 3, h, w]`` from :func:`~avsal.models.stanet.layers.stack_frames`.
            size: output ``(H, W)``.

        Returns:
            ``(out_1, out_0)``: ``[B, 1, H, W]`` logits from the stride-16 and stride-8 decoder stages.
        """
        x = target.x
        st = torch.sigmoid(self.st_refine(stacked))
        h = self.fusion(torch.cat([F.relu(x + self.self_att(x)), F.relu(x + x * st), F.relu(x + x * target.av)], 1))
        h = self.gru(h, x)
        s1, s0 = target.s1, target.s0
        r1 = F.relu(self.refine1(torch.cat([F.interpolate(h, size=s1.shape[2:], mode="bilinear"), s1], 1)) + s1)
        r1 = F.interpolate(r1, size=s0.shape[2:], mode="bilinear")
        r0 = F.relu(self.refine0(torch.cat([r1, s0], 1)) + r1)
        out1 = F.interpolate(self.out1(r1), size=size, mode="bilinear")
        out0 = F.interpolate(self.out0(r0), size=size, mode="bilinear")
        return out1, out0

    def decode_centre(self, f_t: FrameFeatures, f_prev: FrameFeatures, f_next: FrameFeatures, size):
        """``(out_1, out_0)`` of the centre frame t of the triplet (t−1, t, t+1) (upstream's f0_1, f0_0)."""
        stacked = stack_frames(f_next.x, f_t.x, f_prev.x, self.config.temporal_stack)
        return self.decode(f_t, stacked, size)

    def forward(self, frames: torch.Tensor, audio: torch.Tensor):
        b = frames.shape[0]
        size = frames.shape[-2:]
        if self.training:  # BatchNorm statistics per frame position, as upstream
            parts = [self.encode(frames[:, k], audio[:, k]) for k in range(3)]
            f = FrameFeatures(*(torch.cat([getattr(p, n) for p in parts]) for n in ("s0", "s1", "x", "av")))
        else:
            f = self.encode(_frames_first(frames), _frames_first(audio))
        f0, f1, f2 = (f.index(slice(k * b, (k + 1) * b)) for k in range(3))
        mode = self.config.temporal_stack
        o0_1, o0_0 = self.decode(f0, stack_frames(f2.x, f0.x, f1.x, mode), size)
        o1_1, o1_0 = self.decode(f1, stack_frames(f0.x, f1.x, f2.x, mode), size)
        o2_1, o2_0 = self.decode(f2, stack_frames(f1.x, f2.x, f0.x, mode), size)
        return o0_1, o0_0, o1_1, o1_0, o2_0, o2_1
