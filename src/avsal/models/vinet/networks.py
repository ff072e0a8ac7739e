"""ViNet and AViNet: an S3D encoder, a hierarchical 3D-conv decoder and (AViNet) SoundNet-8 audio fusion.

Jain, Yarlagadda, Jyoti, Karthik, Subramanian, Gandhi, "ViNet: Pushing the limits of Visual Modality for
Audio-Visual Saliency Prediction", IROS 2021. Upstream code: samyak0210/ViNet (MIT), ``model.py``
(``VideoSaliencyModel``, ``VideoAudioSaliencyModel``, ``BackBoneS3D``, ``DecoderConvUp``, ``SoundNet``) and
``model_utils.py`` (``BasicConv3d``, ``SepConv3d``, ``Mixed_*``). Layer tables, shapes and parameter counts:
``docs/vinet.md``.

Module and parameter names are upstream's, so official checkpoints load with an identity key map
(``visual_model.backbone.base1.0.conv_s.weight``, ``audionet.conv1.weight``, ``bilinear.weight``, ...).

Calling conventions (float32 unless autocast is used):

* frames: ImageNet-normalised RGB clip ``[B, 3, 32, 224, 384]`` (time-ordered; the output belongs to the
  **last** frame);
* audio (AViNet): a Hann-windowed waveform centred in zeros, ``[B, 1, 70560, 1]`` (the ``(k, 1)`` layout
  of ViNet's SoundNet; see :func:`avsal.models.vinet.audio.clip_audio`);
* output: a sigmoid saliency map ``[B, 224, 384]`` in (0, 1).

The decoder's temporal strides hard-wire T = 32 and the AViNet fusion sizes (42, 3, 336) hard-wire
224×384 frames and 70,560 audio samples; other inputs are refused with a :class:`ValueError` instead of a
shape error deep inside the network. ``tiny=True`` divides every channel width by 8 (same topology,
same time/space sizes; for tests).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

#: Frames per clip: the decoder's temporal strides (3, 5, 5, 2, 2) only fit 32.
CLIP_LENGTH = 32
#: Network input size (height, width) in px; AViNet's bilinear fusion only fits this size.
INPUT_HW = (224, 384)
#: Audio samples per clip for AViNet: ``int(22050 / 10 * 32)`` (upstream ``get_audio_feature``).
AUDIO_SAMPLES = 70560

_BN_EPS = 1e-3
_BN_MOMENTUM = 1e-3
_TINY_DIVISOR = 8

# Mixed block widths (in, b0, b1 reduce, b1 out, b2 reduce, b2 out, b3), upstream ``model_utils.py``.
_MIXED = {
    "3b": (192, 64, 96, 128, 16, 32, 32),
    "3c": (256, 128, 128, 192, 32, 96, 64),
    "4b": (480, 192, 96, 208, 16, 48, 64),
    "4c": (512, 160, 112, 224, 24, 64, 64),
    "4d": (512, 128, 128, 256, 24, 64, 64),
    "4e": (512, 112, 144, 288, 32, 64, 64),
    "4f": (528, 256, 160, 320, 32, 128, 128),
    "5b": (832, 256, 160, 320, 32, 128, 128),
    "5c": (832, 384, 192, 384, 48, 128, 128),
}


@dataclass(frozen=True)
class ViNetConfig:
    """Configuration of :class:`ViNet` and :class:`AViNet`.

    Attributes:
        tiny: every channel width divided by 8 (tests); official checkpoints need ``False``.
        use_transformer: AViNet only: upstream's ``--use_transformer`` variant (1×1×1 conv to
            ``transformer_channels`` tokens of dimension 336, 3 post-norm encoder layers, 1×1×1 conv back).
            Off by default, as in upstream's generators and ``no_trans_upsampling_reduced.pt``.
        transformer_channels: tokens of the transformer variant (upstream ``transformer_in_channel``; its
            ``conv_out_1x1`` hard-wires 32, so upstream only runs with 32).
        nhead: attention heads of the transformer variant (4).
        num_encoder_layers: encoder layers of the transformer variant (3).
    """

    tiny: bool = False
    use_transformer: bool = False
    transformer_channels: int = 32
    nhead: int = 4
    num_encoder_layers: int = 3

    def to_dict(self) -> dict:
        return asdict(self)


def _w(c: int, tiny: bool) -> int:
    return c if not tiny or c <= 3 else max(1, c // _TINY_DIVISOR)


def _bn3d(c: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(c, eps=_BN_EPS, momentum=_BN_MOMENTUM, affine=True)


class BasicConv3d(nn.Module):
    """Conv3d (no bias) + BatchNorm3d(eps 1e-3, momentum 1e-3) + ReLU (upstream ``BasicConv3d``)."""

    def __init__(self, cin: int, cout: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, kernel_size=kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = _bn3d(cout)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class SepConv3d(nn.Module):
    """Separable 3D conv (upstream ``SepConv3d``): spatial (1,k,k) conv + BN + ReLU, then temporal (k,1,1).

    Args:
        cin, cout: channels.
        k: kernel size (the same in space and time).
        stride: stride in space and time.
        padding: padding in space and time.
    """

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.conv_s = nn.Conv3d(cin, cout, (1, k, k), stride=(1, stride, stride), padding=(0, padding, padding),
                                bias=False)
        self.bn_s = _bn3d(cout)
        self.relu_s = nn.ReLU()
        self.conv_t = nn.Conv3d(cout, cout, (k, 1, 1), stride=(stride, 1, 1), padding=(padding, 0, 0), bias=False)
        self.bn_t = _bn3d(cout)
        self.relu_t = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu_s(self.bn_s(self.conv_s(x)))
        return self.relu_t(self.bn_t(self.conv_t(x)))


class Mixed(nn.Module):
    """An S3D inception block (upstream ``Mixed_3b`` … ``Mixed_5c``): four branches concatenated on C.

    ``branch0`` 1×1; ``branch1`` 1×1 → SepConv3; ``branch2`` 1×1 → SepConv3; ``branch3`` MaxPool 3³ s1 p1 → 1×1.
    Input ``[B, Cin, T, H, W]`` → ``[B, b0 + b1 + b2 + b3, T, H, W]``.
    """

    def __init__(self, name: str, tiny: bool = False):
        super().__init__()
        cin, b0, b1r, b1, b2r, b2, b3 = (_w(c, tiny) for c in _MIXED[name])
        self.branch0 = nn.Sequential(BasicConv3d(cin, b0, 1))
        self.branch1 = nn.Sequential(BasicConv3d(cin, b1r, 1), SepConv3d(b1r, b1, 3, 1, 1))
        self.branch2 = nn.Sequential(BasicConv3d(cin, b2r, 1), SepConv3d(b2r, b2, 3, 1, 1))
        self.branch3 = nn.Sequential(nn.MaxPool3d(3, stride=1, padding=1), BasicConv3d(cin, b3, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class S3DBackbone(nn.Module):
    """S3D encoder as ViNet builds it (upstream ``BackBoneS3D``), returning four taps.

    Input ``[B, 3, T, H, W]``; for T = 32, 224×384 the taps are
    ``y0 [B,1024,4,7,12]``, ``y1 [B,832,8,14,24]``, ``y2 [B,480,16,28,48]``, ``y3 [B,192,16,56,96]``
    (channels ÷ 8 when ``tiny``).
    """

    def __init__(self, tiny: bool = False):
        super().__init__()
        w = lambda c: _w(c, tiny)  # noqa: E731
        self.base1 = nn.Sequential(
            SepConv3d(3, w(64), 7, stride=2, padding=3),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            BasicConv3d(w(64), w(64), 1),
            SepConv3d(w(64), w(192), 3, stride=1, padding=1),
        )
        self.maxp2 = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        self.base2 = nn.Sequential(Mixed("3b", tiny), Mixed("3c", tiny))
        self.maxp3 = nn.MaxPool3d(3, stride=2, padding=1)
        self.base3 = nn.Sequential(*(Mixed(n, tiny) for n in ("4b", "4c", "4d", "4e", "4f")))
        self.maxt4 = nn.MaxPool3d((2, 1, 1), stride=(2, 1, 1))
        self.maxp4 = nn.MaxPool3d((1, 2, 2), stride=(1, 2, 2))
        self.base4 = nn.Sequential(Mixed("5b", tiny), Mixed("5c", tiny))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[B, 3, T, H, W]`` → ``[y0, y1, y2, y3]`` (deepest first, as upstream)."""
        y3 = self.base1(x)
        y2 = self.base2(self.maxp2(y3))
        y1 = self.base3(self.maxp3(y2))
        y0 = self.base4(self.maxp4(self.maxt4(y1)))
        return [y0, y1, y2, y3]


class DecoderConvUp(nn.Module):
    """ViNet's decoder for 32-frame clips (upstream ``DecoderConvUp``, ``num_hier=3``).

    Skips are concatenated along **time** (dim 2), as upstream does; the temporal strides (3, 5, 5, 2, 2)
    reduce the 4+8 → 4, 4+16 → 4, 4+16 → 4 → 2 → 1 frames. Every conv has no bias except the last;
    ``U`` = trilinear ×(1,2,2) upsampling (align_corners False).

    Inputs: the four taps of :class:`S3DBackbone` (y0 may be AViNet's fused features of the same shape).
    Output: sigmoid map ``[B, 8·H0, 32·W0 / 1]`` = ``[B, 224, 384]`` for 224×384 frames.
    """

    def __init__(self, tiny: bool = False):
        super().__init__()
        w = lambda c: _w(c, tiny)  # noqa: E731
        self.upsampling = nn.Upsample(scale_factor=(1, 2, 2), mode="trilinear")
        self.convtsp1 = nn.Sequential(
            nn.Conv3d(w(1024), w(832), (1, 3, 3), stride=1, padding=(0, 1, 1), bias=False), nn.ReLU(),
            self.upsampling)
        self.convtsp2 = nn.Sequential(
            nn.Conv3d(w(832), w(480), (3, 3, 3), stride=(3, 1, 1), padding=(0, 1, 1), bias=False), nn.ReLU(),
            self.upsampling)
        self.convtsp3 = nn.Sequential(
            nn.Conv3d(w(480), w(192), (5, 3, 3), stride=(5, 1, 1), padding=(0, 1, 1), bias=False), nn.ReLU(),
            self.upsampling)
        self.convtsp4 = nn.Sequential(
            nn.Conv3d(w(192), w(64), (5, 3, 3), stride=(5, 1, 1), padding=(0, 1, 1), bias=False), nn.ReLU(),
            self.upsampling,
            nn.Conv3d(w(64), w(32), (2, 3, 3), stride=(2, 1, 1), padding=(0, 1, 1), bias=False), nn.ReLU(),
            self.upsampling,
            nn.Conv3d(w(32), w(32), (2, 1, 1), stride=(2, 1, 1), bias=False), nn.ReLU(),
            nn.Conv3d(w(32), 1, 1, stride=1, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, y0, y1, y2, y3) -> torch.Tensor:
        z = torch.cat((self.convtsp1(y0), y1), 2)
        z = torch.cat((self.convtsp2(z), y2), 2)
        z = torch.cat((self.convtsp3(z), y3), 2)
        z = self.convtsp4(z)
        return z.view(z.size(0), z.size(3), z.size(4))


def check_clip(x: torch.Tensor, exact_size: bool = False) -> None:
    """Refuse clips the network cannot process, with a message instead of a shape error.

    Args:
        x: ``[B, 3, T, H, W]``.
        exact_size: require H×W = 224×384 (AViNet); otherwise H and W must be multiples of 32.

    Raises:
        ValueError: wrong rank, channel count, clip length (≠ 32) or frame size.
    """
    if x.dim() != 5 or x.shape[1] != 3:
        raise ValueError(f"ViNet expects a clip [B, 3, T, H, W]; got shape {tuple(x.shape)}")
    if x.shape[2] != CLIP_LENGTH:
        raise ValueError(f"ViNet's decoder hard-wires clips of {CLIP_LENGTH} frames (its temporal strides "
                         f"only fit 32); got {x.shape[2]} frames")
    h, w = x.shape[-2:]
    if exact_size and (h, w) != INPUT_HW:
        raise ValueError(f"AViNet's fusion hard-wires {INPUT_HW[0]}×{INPUT_HW[1]} frames; got {h}×{w}")
    if h % 32 or w % 32:
        raise ValueError(f"ViNet needs frame sizes that are multiples of 32 px; got {h}×{w}")


class ViNet(nn.Module):
    """The visual saliency network (upstream ``VideoSaliencyModel()`` with its defaults).

    Submodules ``backbone`` (:class:`S3DBackbone`) and ``decoder`` (:class:`DecoderConvUp`);
    31,099,585 parameters at full size.

    Args:
        tiny: channel widths ÷ 8 (tests).
    """

    def __init__(self, tiny: bool = False):
        super().__init__()
        self.config = ViNetConfig(tiny=tiny)
        self.backbone = S3DBackbone(tiny)
        self.decoder = DecoderConvUp(tiny)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, 32, H, W]`` (ImageNet-normalised) → saliency map ``[B, H, W]`` in (0, 1) for the last frame.

        Raises:
            ValueError: a clip that is not 32 frames or whose size is not a multiple of 32 px.
        """
        check_clip(x)
        y0, y1, y2, y3 = self.backbone(x)
        return self.decoder(y0, y1, y2, y3)


class SoundNet8(nn.Module):
    """SoundNet-8 in ViNet's layout (upstream ``model.py`` ``SoundNet``): 2D convs with ``(k, 1)`` kernels.

    Layers ``conv1…conv7`` with ``batchnorm1…7`` (BN eps 1e-5, momentum 0.1) and ReLU; max-pools (8,1)
    after 1 and 2, (4,1) after 5; no pool after conv7. Upstream also defines ``conv8_objs`` (1024→1000)
    and ``conv8_scns`` (1024→401, together 11,478,393 parameters) but never calls them: they are not built
    here, and the converter reports their checkpoint keys as *dropped*.

    Input ``[B, 1, N, 1]`` waveform (N = 70,560 for AViNet) → ``[B, 1024, L, 1]`` (L = 3 for 70,560).
    """

    _SPEC = ((16, 64, 32, 8), (32, 32, 16, 8), (64, 16, 8, 0), (128, 8, 4, 0), (256, 4, 2, 4), (512, 4, 2, 0),
             (1024, 4, 2, 0))

    def __init__(self, tiny: bool = False):
        super().__init__()
        cin = 1
        for i, (cout, k, p, pool) in enumerate(self._SPEC, start=1):
            cout = _w(cout, tiny)
            setattr(self, f"conv{i}", nn.Conv2d(cin, cout, (k, 1), stride=(2, 1), padding=(p, 0)))
            setattr(self, f"batchnorm{i}", nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1))
            setattr(self, f"relu{i}", nn.ReLU())
            if pool:
                setattr(self, f"maxpool{i}", nn.MaxPool2d((pool, 1), stride=(pool, 1)))
            cin = cout

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = waveform
        for i in range(1, 8):
            x = getattr(self, f"relu{i}")(getattr(self, f"batchnorm{i}")(getattr(self, f"conv{i}")(x)))
            pool = getattr(self, f"maxpool{i}", None)
            if pool is not None:
                x = pool(x)
        return x


class PositionalEncoding(nn.Module):
    """Sin/cos positional encoding added to ``[S, B, D]`` tokens (upstream ``PositionalEncoding``; S = max_len).

    ``pe`` is a persistent buffer ``[max_len, 1, D]`` (it is in upstream checkpoints). The dropout is
    defined but, as upstream, not applied.
    """

    def __init__(self, feat_size: int, max_len: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        pe = torch.zeros(max_len, feat_size)
        position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, feat_size, 2).float() * (-math.log(10000.0) / feat_size))
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe.unsqueeze(0).transpose(0, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe


class Transformer(nn.Module):
    """Upstream ``Transformer`` as AViNet's variant uses it: positional encoding + post-norm encoder stack.

    Tokens ``[S, B, D]`` (sequence first) → ``[S, B, D]``; each layer is
    ``nn.TransformerEncoderLayer(D, nhead, dim_feedforward=D)`` (ReLU, dropout 0.1).
    """

    def __init__(self, feat_size: int, hidden_size: int, nhead: int, num_encoder_layers: int, max_len: int):
        super().__init__()
        self.pos_encoder = PositionalEncoding(feat_size, max_len=max_len)
        layer = nn.TransformerEncoderLayer(feat_size, nhead, hidden_size)
        self.transformer_encoder = nn.TransformerEncoder(layer, num_encoder_layers, enable_nested_tensor=False)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.transformer_encoder(self.pos_encoder(embeddings))


class AViNet(nn.Module):
    """The audio-visual network (upstream ``VideoAudioSaliencyModel``), bilinear per-channel fusion.

    ``visual_model`` (:class:`ViNet`) runs its backbone; y0 ``[B,1024,4,7,12]`` → ``maxpool``
    (MaxPool3d (4,1,1), stride (2,1,2)) → ``[B,1024,42]``; ``audionet`` (:class:`SoundNet8`) gives
    ``[B,1024,3]``; ``bilinear`` = ``nn.Bilinear(42, 3, 336)`` pairs visual channel c with audio channel c →
    ``[B,1024,4,7,12]``, which **replaces** y0 at the decoder input. With ``use_transformer`` the fused
    features go through ``conv_in_1x1`` → :class:`Transformer` (d 336, ``transformer_channels`` tokens) →
    ``conv_out_1x1`` first. 34,016,577 parameters at full size (upstream's 45,494,970 less the
    11,478,393 of SoundNet's unused ``conv8_*``, which are not built); 36,125,377 with the transformer.

    Args:
        tiny, use_transformer, transformer_channels, nhead, num_encoder_layers: see :class:`ViNetConfig`.
    """

    def __init__(self, tiny: bool = False, use_transformer: bool = False, transformer_channels: int = 32,
                 nhead: int = 4, num_encoder_layers: int = 3):
        super().__init__()
        self.config = ViNetConfig(tiny, use_transformer, transformer_channels, nhead, num_encoder_layers)
        self.use_transformer = use_transformer
        self.visual_model = ViNet(tiny)
        c0 = _w(1024, tiny)
        tokens = 4 * 7 * 12
        if use_transformer:
            self.conv_in_1x1 = nn.Conv3d(c0, transformer_channels, 1, stride=1, bias=True)
            self.conv_out_1x1 = nn.Conv3d(transformer_channels, c0, 1, stride=1, bias=True)
            self.transformer = Transformer(tokens, tokens, nhead, num_encoder_layers, max_len=transformer_channels)
        self.audionet = SoundNet8(tiny)
        self.maxpool = nn.MaxPool3d((4, 1, 1), stride=(2, 1, 2))
        self.bilinear = nn.Bilinear(42, 3, tokens)

    def forward(self, x: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Clip ``[B, 3, 32, 224, 384]`` and audio ``[B, 1, 70560, 1]`` → saliency map ``[B, 224, 384]`` in (0, 1).

        Raises:
            ValueError: a clip that is not 32×224×384, or audio that is not ``[B, 1, 70560, 1]``.
        """
        check_clip(x, exact_size=True)
        if audio.dim() != 4 or tuple(audio.shape[1:]) != (1, AUDIO_SAMPLES, 1) or audio.shape[0] != x.shape[0]:
            raise ValueError(f"AViNet expects audio [B, 1, {AUDIO_SAMPLES}, 1] with B = {x.shape[0]}; "
                             f"got {tuple(audio.shape)}")
        y0, y1, y2, y3 = self.visual_model.backbone(x)
        return self.visual_model.decoder(self.fuse(y0, audio), y1, y2, y3)

    def fuse(self, y0: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """The audio-visual fusion: backbone tap ``y0 [B, C, 4, 7, 12]`` and audio ``[B, 1, 70560, 1]`` →
        fused features ``[B, C, 4, 7, 12]`` (C = 1024, or 128 when tiny) that replace y0 at the decoder."""
        a = self.audionet(audio)
        dt = self.bilinear.weight.dtype  # nn.Bilinear is not autocast: give both inputs its dtype (no-op in fp32)
        fused = self.bilinear(self.maxpool(y0).flatten(2).to(dt), a.flatten(2).to(dt))
        fused = fused.view(fused.size(0), fused.size(1), 4, 7, 12)
        if self.use_transformer:
            t = self.conv_in_1x1(fused).flatten(2).permute(1, 0, 2)
            t = self.transformer(t).permute(1, 0, 2)
            fused = self.conv_out_1x1(t.reshape(t.size(0), t.size(1), 4, 7, 12))
        return fused


def count_parameters(net: nn.Module) -> int:
    """Number of parameter elements (BN buffers excluded), as upstream's counts in ``docs/vinet.md``."""
    return sum(p.numel() for p in net.parameters())
