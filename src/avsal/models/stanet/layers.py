"""Building blocks shared by the STANet networks (Wang et al., CVPR 2021; upstream guotaowang/STANet).

Every block computes what its upstream counterpart computes (``self_attention``, ``ConvGRUCell``,
``AVfusion``, ``extra_refineST`` and the frame stacking in ``STModel.py`` / ``STAmodel.py``); names
follow the paper. The upstream ``extra_*`` checkpoint names are mapped in :mod:`avsal.models.stanet.convert`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Frame-stacking modes of the spatio-temporal branch; see :func:`stack_frames`.
TEMPORAL_STACK_MODES = ("upstream", "permute")


class SelfAttention(nn.Module):
    """Spatial self-attention gate ("SelfAtt", ``docs/stanet.md`` §2).

    ``f, g = 1×1(C→C/2)(x)``, ``h = 1×1(C→C)(x)`` flattened over ``N = H·W``;
    ``A = softmax_dim1(fᵀ g)`` (``[B, N, N]``, normalised over the *first* position index, as upstream);
    ``o = h A``; returns ``σ(1×1(C→1, no bias)(o)) ⊙ x``.

    Shapes: ``[B, C, H, W]`` → ``[B, C, H, W]``.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.query = nn.Conv2d(channels, channels // 2, 1)
        self.key = nn.Conv2d(channels, channels // 2, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gate = nn.Conv2d(channels, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        f = self.query(x).flatten(2)
        g = self.key(x).flatten(2)
        v = self.value(x).flatten(2)
        att = F.softmax(torch.bmm(f.transpose(1, 2), g), dim=1)
        o = torch.bmm(v, att).view(b, c, h, w)
        return torch.sigmoid(self.gate(o)) * x


class ConvGRUCell(nn.Module):
    """One step of a convolutional GRU with 1×1 kernels (upstream ``ConvGRU.py``).

    ``z = σ(W_z[x, s])``, ``r = σ(W_r[x, s])``, ``ĥ = tanh(W_o[x, r ⊙ s])``, ``s' = s ⊙ (1 − z) + ĥ ⊙ z``.
    STANet calls it once, with the fused features as input and the raw features as state.

    Shapes: ``input, state [B, C, H, W]`` → ``[B, C, H, W]``.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.reset_gate = nn.Conv2d(2 * channels, channels, 1)
        self.update_gate = nn.Conv2d(2 * channels, channels, 1)
        self.out_gate = nn.Conv2d(2 * channels, channels, 1)

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        stacked = torch.cat([x, state], dim=1)
        update = torch.sigmoid(self.update_gate(stacked))
        reset = torch.sigmoid(self.reset_gate(stacked))
        cand = torch.tanh(self.out_gate(torch.cat([x, state * reset], dim=1)))
        return state * (1 - update) + cand * update


class AVFusion(nn.Module):
    """Audio-visual attention mask (upstream ``AVfusion``, ``docs/stanet.md`` §2.4).

    ``v = 1×1(Cv→D)(visual)`` → ``[B, D, HW]``; ``q = Linear(Ca→D)(audio)`` (column);
    ``p = Linear(Cv→D)(GAP(visual))`` (row); ``W = softmax_lastdim(q pᵀ)`` ``[B, D, D]``;
    mask ``= σ(1×1(hidden→1)(ReLU(1×1(D→hidden)(W v))))``.

    Args:
        visual_channels: Cv (2048 for layer4).
        audio_dim: Ca (8192 for the NetVLAD embedding).
        dim: D (128).
        hidden: gate width (32 in STA; 28 in SA's inferred fix).

    Shapes: ``audio [B, Ca]``, ``visual [B, Cv, H, W]`` → ``[B, 1, H, W]`` in (0, 1).
    """

    def __init__(self, visual_channels: int, audio_dim: int, dim: int = 128, hidden: int = 32):
        super().__init__()
        self.dim = dim
        self.visual_proj = nn.Conv2d(visual_channels, dim, 1)
        self.audio_fc = nn.Linear(audio_dim, dim)
        self.visual_fc = nn.Linear(visual_channels, dim)
        self.gate = nn.Sequential(nn.Conv2d(dim, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, 1, 1))

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        b, _, h, w = visual.shape
        v = self.visual_proj(visual).view(b, self.dim, h * w)
        q = self.audio_fc(audio).view(b, -1, 1)
        p = self.visual_fc(visual.mean(dim=(2, 3))).unsqueeze(1)
        att = F.softmax(torch.bmm(q, p), dim=-1)
        return torch.sigmoid(self.gate(torch.bmm(att, v).view(b, self.dim, h, w)))


class AudioQueryMask(nn.Module):
    """Audio-conditioned spatial mask (avsal's alternative to :class:`AVFusion` for SA; not in upstream).

    ``v = 1×1(Cv→D)(visual)``, ``q = BatchNorm(Linear(Ca→D)(audio))`` (standardised per dimension: the
    unit-norm NetVLAD embeddings of different sounds differ little); mask ``= σ(w · cos(v(x), q) + b)`` with a learnt
    scale ``w`` (initially 10) and bias ``b`` (initially 0): the mask lights up *where* the visual features
    match the sound, the audio-visual correlation map of sound-source localisation (Arandjelović &
    Zisserman, "Objects that Sound", ECCV 2018). The cosine makes the mask independent of the scale of the
    N(0, 0.01)-initialised projections, so the audio path gets gradients from the start. In
    :class:`AVFusion` the audio enters only through ``softmax_j(q_i p_j)`` against the *global* visual
    embedding ``p`` (one temperature per row), which cannot tell which of two objects sounds;
    ``docs/weak_pipeline.md`` ("Does SA use the audio?") measures the difference.

    SA feeds it its class maps x1 (Cv = K): the audio then picks which class's evidence the mask follows.
    The BatchNorm needs training batches of more than one sample (upstream's SA batch is 8).

    Args:
        visual_channels: Cv; audio_dim: Ca; dim: D (128); hidden: unused (the signature of :class:`AVFusion`).

    Shapes: ``audio [B, Ca]``, ``visual [B, Cv, H, W]`` → ``[B, 1, H, W]`` in (0, 1).
    """

    def __init__(self, visual_channels: int, audio_dim: int, dim: int = 128, hidden: int = 32):
        super().__init__()
        self.visual_proj = nn.Conv2d(visual_channels, dim, 1)
        self.audio_fc = nn.Linear(audio_dim, dim)
        self.audio_norm = nn.BatchNorm1d(dim)
        self.sim_weight = nn.Parameter(torch.tensor(10.0))  # "weight"/"bias" names: SGD groups ×10 / ×20
        self.sim_bias = nn.Parameter(torch.tensor(0.0))

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        v = F.normalize(self.visual_proj(visual), dim=1)
        q = F.normalize(self.audio_norm(self.audio_fc(audio)), dim=1)[:, :, None, None]
        return torch.sigmoid(self.sim_weight * (v * q).sum(1, keepdim=True) + self.sim_bias)


class STRefine(nn.Module):
    """Temporal refinement of three stacked frames (upstream ``extra_refineST``).

    Conv3d ``(3,1,1)`` without padding (collapses the 3 time steps), then two ``(1,3,3)`` with spatial
    padding 1; all C → C channels.

    Shapes: ``[B, C, 3, H, W]`` → ``[B, C, H, W]`` (logits; STANet applies a sigmoid).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv3d(channels, channels, (3, 1, 1)),
            nn.Conv3d(channels, channels, (1, 3, 3), padding=(0, 1, 1)),
            nn.Conv3d(channels, channels, (1, 3, 3), padding=(0, 1, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).squeeze(2)


def stack_frames(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, mode: str = "upstream") -> torch.Tensor:
    """Stack three ``[B, C, H, W]`` maps into the ``[B, C, 3, H, W]`` input of :class:`STRefine`.

    Args:
        a, b, c: the maps in temporal-input order.
        mode: ``"upstream"`` reproduces the upstream code exactly: it stacks to ``[B, 3, C, H, W]`` and then
            ``.view``\\ s it as ``[B, C, 3, H, W]`` *without* a permute, so channels and time are mixed
            (a defect, but official checkpoints were trained with it); ``"permute"`` stacks along a new
            time axis (the evident intent).

    Raises:
        ValueError: unknown mode.
    """
    if mode == "upstream":
        bsz, ch, h, w = a.shape
        return torch.stack([a, b, c], dim=1).reshape(bsz, ch, 3, h, w)
    if mode == "permute":
        return torch.stack([a, b, c], dim=2)
    raise ValueError(f"temporal_stack must be one of {TEMPORAL_STACK_MODES}, got {mode!r}")


def init_heads(module: nn.Module) -> None:
    """Upstream head initialisation: every ``Conv2d`` weight ~ N(0, 0.01), ``BatchNorm2d`` 1 / 0.

    Applied to the new (non-backbone) modules only, *before* pretrained backbones are loaded (STA_trial
    runs it afterwards and so wipes its pretrained backbones). Conv2d biases, Conv3d and Linear layers
    keep PyTorch's default initialisation, as upstream.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.01)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
