"""STAViS: the spatio-temporal audio-visual saliency network and its visual-only variant.

Tsiami, Koutras, Maragos, "STAViS: Spatio-Temporal AudioVisual Saliency Network", CVPR 2020. Upstream code:
atsiami/STAViS (MIT) ``models/resnet.py``, ``models/dsam_layers.py``, ``models/av_fusion.py``. Layer-by-layer
description, parameter counts and the upstream defects: ``docs/stavis.md``.

Calling convention (float32):

* ``clip``: ``[B, 3, T, H, W]``, T = 16 consecutive frames, H = W = 112 at full size, RGB in 0–255 minus the
  ActivityNet mean (:func:`avsal.models.stavis.preprocess.frame_tensor`);
* ``audio``: ``[B, 1, 1, L]``, L = 35,280 samples (float waveform × 256, Hann-windowed and centred;
  :func:`avsal.models.stavis.preprocess.audio_excerpt`). Only the ``av`` variant reads it;
* output: a list of logit maps ``[B, 1, H, W]`` — ``visual``: the four DSAM side outputs then the fused map
  (the last one is the prediction); ``av``: the fused map only. Saliency = ``sigmoid(out[-1])``.

Differences from upstream that change no finite number: the spatial softmax subtracts its maximum (upstream
overflows to NaN for logits > 88), the AV fusion flattens the audio embedding per sample (upstream crashes at
B = 1, ``docs/stavis.md`` §Defects), the visual variant neither builds nor runs SoundNet and the AV fusion
(upstream runs SoundNet and discards it), each variant builds only its own read-out (``fuse`` or
``fuse_av``), and the av variant leaves out the unused side-output deconvolutions and fourth attention score;
the unused upstream keys are reported as dropped by the converter.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avsal.models.stavis.preprocess import AUDIO_LENGTH  # noqa: F401  (re-exported: the audio input length)

#: The two variants.
VARIANTS = ("visual", "av")


@dataclass(frozen=True)
class StavisConfig:
    """Configuration of :class:`Stavis`.

    Attributes:
        variant: ``"av"`` (audio-visual, 1 output) or ``"visual"`` (visual only, 4 side outputs + fused).
        tiny: few channels and one block per stage (same topology) for fast tests.
        clip_length: T, frames per clip (16 upstream; must be a multiple of 8).
    """

    variant: str = "av"
    tiny: bool = False
    clip_length: int = 16

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.clip_length < 8 or self.clip_length % 8:
            raise ValueError(f"clip_length must be a positive multiple of 8, got {self.clip_length}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Widths:
    stem: int           # conv1 channels (64)
    planes: tuple       # bottleneck planes of layer1..3 (64, 128, 256); outputs ×4
    blocks: tuple       # blocks per layer (3, 4, 6)
    side: int           # DSAM side channels (16)
    sound: tuple        # SoundNet-8 channels (16 … 1024)
    fusion_hidden: int  # AV projection size (128)
    fusion_out: int     # bilinear output channels (64)


FULL = _Widths(64, (64, 128, 256), (3, 4, 6), 16, (16, 32, 64, 128, 256, 512, 1024), 128, 64)
TINY = _Widths(8, (8, 16, 32), (1, 1, 1), 4, (2, 4, 4, 8, 8, 16, 32), 8, 16)


def centre_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Crop (or zero-pad) ``[..., h, w]`` to ``height × width`` around the centre.

    An odd excess is split as upstream's ``center_crop`` (``models/dsam_layers.py``): ``⌊d/2⌋`` removed at
    the top/left, ``⌈d/2⌉`` at the bottom/right.
    """
    dh, dw = x.shape[-2] - height, x.shape[-1] - width
    return F.pad(x, [math.ceil(-dw / 2), math.floor(-dw / 2), math.ceil(-dh / 2), math.floor(-dh / 2)])


def spatial_softmax(x: torch.Tensor) -> torch.Tensor:
    """Softmax over the last two axes (H×W) of ``[B, C, H, W]``, max-subtracted.

    Upstream (``models/dsam_layers.py: spatial_softmax``) computes ``exp(x) / Σ exp(x)`` directly, which
    overflows for x > 88 in float32; this equals it wherever upstream is finite.
    """
    flat = x.flatten(2)
    return torch.softmax(flat, dim=-1).view_as(x)


def bilinear_kernel(size: int) -> np.ndarray:
    """The ``size × size`` bilinear-interpolation kernel (upstream ``upsample_filt``), float64."""
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    og = np.ogrid[:size, :size]
    return (1 - abs(og[0] - centre) / factor) * (1 - abs(og[1] - centre) / factor)


class Bottleneck3d(nn.Module):
    """3D bottleneck of Hara et al.'s 3D-ResNets: 1×1×1 → 3×3×3 (stride) → 1×1×1 (×4), no conv biases.

    Shortcut B: a strided 1×1×1 conv + BatchNorm when the shape changes (``downsample``), else identity.
    """

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv3d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv3d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm3d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _layer(cin: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    layers = [Bottleneck3d(cin, planes, stride)]
    layers += [Bottleneck3d(planes * Bottleneck3d.expansion, planes) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class DSAM(nn.Module):
    """Deeply Supervised Attention Module at level ``i`` (1–4) (upstream ``dsam_score_dsn``).

    ``forward(x [B, C, T, h, w], height, width)`` averages over T, then
    ``side_prep`` (3×3, C→S) gives the side features; ``side_upsample`` (transposed conv, kernel 2^(i+1),
    stride 2^i) + centre crop gives the side map ``[B, S, H, W]`` fed to the read-out; ``score`` (1×1, S→1)
    gives the attention logits ``[B, 1, h, w]``; ``score_upsample`` + crop gives the side output
    ``[B, 1, H, W]`` (a logit map, deep supervision). Returns ``(side_map, side_out, attention_logits)``.

    ``score=False`` (the av model's last level: neither attention nor side output is used) and
    ``side_output=False`` (the av model has no deep supervision) leave those layers out; the missing parts
    are returned as ``None``.
    """

    def __init__(self, level: int, cin: int, side: int, score: bool = True, side_output: bool = True):
        super().__init__()
        k, s = 2 ** (level + 1), 2 ** level
        self.side_prep = nn.Conv2d(cin, side, 3, padding=1)
        self.side_upsample = nn.ConvTranspose2d(side, side, k, stride=s, bias=False)
        self.score = nn.Conv2d(side, 1, 1) if score else None
        self.score_upsample = nn.ConvTranspose2d(1, 1, k, stride=s, bias=False) if score and side_output else None

    def forward(self, x: torch.Tensor, height: int, width: int):
        feat = self.side_prep(x.mean(dim=2))
        side_map = centre_crop(self.side_upsample(feat), height, width)
        logits = self.score(feat) if self.score is not None else None
        side_out = None
        if self.score_upsample is not None:
            side_out = centre_crop(self.score_upsample(logits), height, width)
        return side_map, side_out, logits


def attend(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``x · (1 + softmax_HW(logits))``: ``x [B, C, T, h, w]``, ``logits [B, 1, h, w]``."""
    return x * (1 + spatial_softmax(logits).unsqueeze(2))


class SoundNet8(nn.Module):
    """SoundNet-8 (Aytar et al. 2016) as STAViS builds it: 2D convolutions with kernels laid out (1, k).

    ``forward(audio [B, 1, 1, L])`` → ``[B, C7, 1, L']`` (``[B, 1024, 1, 1]`` for L = 35,280; ``docs/stavis.md``
    §SoundNet). Seven conv (stride 2, padding k/2) + BatchNorm + ReLU stages with max-pooling by 8 after
    stages 1 and 2, by 4 after stage 5 and by 2 after stage 7.
    """

    KERNELS = (64, 32, 16, 8, 4, 4, 4)
    POOLS = {1: 8, 2: 8, 5: 4, 7: 2}

    def __init__(self, channels=FULL.sound):
        super().__init__()
        cin = 1
        for i, (c, k) in enumerate(zip(channels, self.KERNELS), start=1):
            setattr(self, f"conv{i}", nn.Conv2d(cin, c, (1, k), (1, 2), (0, k // 2)))
            setattr(self, f"bn{i}", nn.BatchNorm2d(c))
            cin = c
        self.out_dim = cin

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = audio
        for i in range(1, 8):
            x = F.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
            if i in self.POOLS:
                p = self.POOLS[i]
                x = F.max_pool2d(x, (1, p), (1, p))
        return x


class BilinearAVFusion(nn.Module):
    """The audio-visual fusion (upstream ``av_module``): a bilinear form between each pixel and the sound.

    ``forward(layer2 [B, C, T', h, w], sound [B, A, 1, 1], height, width)``: the two middle frames
    T'//2−1 … T'//2 of layer2 are averaged; each pixel vector goes through ``visual_proj`` (Linear C→D + ReLU),
    the sound embedding through ``audio_proj`` (Linear A→D + ReLU); ``bilinear`` (D×D→O) combines them
    per pixel; the ``[B, O, h, w]`` map is upsampled ×8 (bilinear, align_corners False) and centre-cropped
    to ``[B, O, H, W]``.
    """

    def __init__(self, visual_dim: int, audio_dim: int, hidden: int, out: int):
        super().__init__()
        self.visual_proj = nn.Linear(visual_dim, hidden)
        self.audio_proj = nn.Linear(audio_dim, hidden)
        self.bilinear = nn.Bilinear(hidden, hidden, out)

    def forward(self, layer2: torch.Tensor, sound: torch.Tensor, height: int, width: int) -> torch.Tensor:
        t = layer2.shape[2]
        v = layer2[:, :, t // 2 - 1:t // 2 + 1].mean(dim=2)
        b, c, h, w = v.shape
        v = F.relu(self.visual_proj(v.permute(0, 2, 3, 1).reshape(b, h * w, c)))
        a = F.relu(self.audio_proj(sound.flatten(1)))
        a = a.unsqueeze(1).expand(-1, h * w, -1)
        with torch.autocast(v.device.type, enabled=False):  # nn.Bilinear has no reduced-precision autocast rule
            y = self.bilinear(v.float().contiguous(), a.float().contiguous())
        y = y.view(b, h, w, -1).permute(0, 3, 1, 2)
        y = F.interpolate(y, scale_factor=8, mode="bilinear", align_corners=False)
        return centre_crop(y, height, width)


class Stavis(nn.Module):
    """STAViS (``variant="av"``, 21,813,956 parameters) or its visual-only variant (17,695,445).

    3D ResNet-50 trunk (``conv1``/``bn1``/``layer1``–``layer3``; no layer4), a DSAM after conv1, layer1,
    layer2 and layer3 (the first three re-weight the features by ``1 + attention``; the fourth's attention is
    not used), SoundNet-8 and the bilinear AV fusion on layer2 (av only), and a 1×1 read-out over the
    concatenated side maps (``fuse``, visual) or the side maps plus the fusion map (``fuse_av``, av). Only the
    layers a variant uses are built (all parameters get gradients, as DistributedDataParallel needs): the av model
    has no side-output deconvolutions and no fourth attention score.

    ``forward(clip [B, 3, T, H, W], audio [B, 1, 1, L] | None)`` → list of logit maps ``[B, 1, H, W]``
    (visual: 4 side outputs + fused; av: fused). The av variant requires ``audio`` (use zeros for silence).
    """

    def __init__(self, config: StavisConfig | None = None, **overrides):
        super().__init__()
        cfg = config or StavisConfig()
        if overrides:
            cfg = StavisConfig(**{**asdict(cfg), **overrides})
        self.config = cfg
        w = TINY if cfg.tiny else FULL
        self.conv1 = nn.Conv3d(3, w.stem, 7, stride=(1, 2, 2), padding=3, bias=False)
        self.bn1 = nn.BatchNorm3d(w.stem)
        outs = [p * Bottleneck3d.expansion for p in w.planes]
        self.layer1 = _layer(w.stem, w.planes[0], w.blocks[0], 1)
        self.layer2 = _layer(outs[0], w.planes[1], w.blocks[1], 2)
        self.layer3 = _layer(outs[1], w.planes[2], w.blocks[2], 2)
        av = cfg.variant == "av"  # av: no deep supervision, and the last level's attention is never applied
        self.dsam = nn.ModuleList(DSAM(i, c, w.side, score=not (av and i == 4), side_output=not av)
                                  for i, c in enumerate([w.stem] + outs, start=1))
        if cfg.variant == "av":
            self.soundnet = SoundNet8(w.sound)
            self.av_fusion = BilinearAVFusion(outs[1], w.sound[-1], w.fusion_hidden, w.fusion_out)
            self.fuse_av = nn.Conv2d(4 * w.side + w.fusion_out, 1, 1)
        else:
            self.fuse = nn.Conv2d(4 * w.side, 1, 1)
        self.reset_parameters()

    @property
    def audiovisual(self) -> bool:
        return self.config.variant == "av"

    def reset_parameters(self) -> None:
        """Upstream's initialisation (``models/resnet.py``): Conv3d kaiming-normal (fan_out), BatchNorm 1/0,
        Conv2d N(0, 0.001) with zero bias, transposed convs the bilinear kernel on the channel diagonal,
        Linear/Bilinear kaiming-normal (fan_out) with zero bias; the score and read-out biases −6. Nothing is
        done on the meta device (networks built there only for their shapes, or to receive checkpoint tensors)."""
        if self.conv1.weight.is_meta:
            return
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, (nn.BatchNorm3d, nn.BatchNorm2d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.ConvTranspose2d):
                with torch.no_grad():
                    m.weight.zero_()
                    kern = torch.from_numpy(bilinear_kernel(m.weight.shape[-1])).to(m.weight.dtype)
                    for i in range(min(m.weight.shape[:2])):
                        m.weight[i, i] = kern
            elif isinstance(m, (nn.Linear, nn.Bilinear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for d in self.dsam:
            if d.score is not None:
                nn.init.constant_(d.score.bias, -6.0)
        nn.init.constant_((self.fuse_av if self.audiovisual else self.fuse).bias, -6.0)

    def forward(self, clip: torch.Tensor, audio: torch.Tensor | None = None) -> list[torch.Tensor]:
        height, width = clip.shape[-2:]
        sides, side_outs = [], []

        def dsam(level: int, x: torch.Tensor, apply: bool = True) -> torch.Tensor:
            side_map, side_out, logits = self.dsam[level](x, height, width)
            sides.append(side_map)
            side_outs.append(side_out)
            return attend(x, logits) if apply else x

        x = F.relu(self.bn1(self.conv1(clip)))
        x = F.max_pool3d(dsam(0, x), 3, stride=2, padding=1)
        x = self.layer2(dsam(1, self.layer1(x)))
        fusion = None
        if self.audiovisual:
            if audio is None:
                raise ValueError("the av variant needs audio [B, 1, 1, L] (zeros for silence)")
            fusion = self.av_fusion(x, self.soundnet(audio), height, width)
        x = self.layer3(dsam(2, x))
        dsam(3, x, apply=False)  # the fourth attention is computed upstream but never applied
        sides_cat = torch.cat(sides, 1)
        if self.audiovisual:
            return [self.fuse_av(torch.cat([sides_cat, fusion], 1))]
        return side_outs + [self.fuse(sides_cat)]


def build_stavis(variant: str = "av", **cfg) -> Stavis:
    """A randomly initialised :class:`Stavis` of the given variant (``cfg``: other :class:`StavisConfig`
    fields)."""
    return Stavis(StavisConfig(variant=variant, **cfg))
