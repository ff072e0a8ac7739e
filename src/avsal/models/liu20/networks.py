"""The Liu et al. (ECCV 2020) visual + audio + face fusion network, as released.

Liu, Qiao, Xu, Li, Hu, Borji, "Learning to Predict Salient Faces: A Novel Visual-Audio Saliency Model",
ECCV 2020. Upstream: MinglangQiao/visual_audio_saliency ``model.py`` (class
``visual_audio_face_modal_combine_net`` with its default arguments). The layer table, the upstream
defects and how parity was measured are in ``docs/liu20.md``; this module is written from that
description (the upstream repository has no licence, so none of its code is used here).

Inputs of :meth:`Liu20Net.forward` (float32; ``B`` frames of one video, **in temporal order**):

* ``x1``: frame ``t − 5``, ``[B, 3, 256, 256]``, RGB 0–255 minus the mean ``[123.68, 116.779, 103.939]``;
* ``x2``: frame ``t`` (the predicted frame), same format;
* ``mel``: ``[B, 1, 16, 64, 64]``, the 16 per-frame log-mel images of frames ``t − 8 … t + 7``, values
  0–255 (:mod:`avsal.models.liu20.features`);
* ``face``: ``[B, 1, 32, 32]``, the face-branch GMM map after upstream's normalisation
  (``×255/max − 14.9``; :func:`avsal.models.liu20.faces.normalise_gmm`).

Output: the saliency **logit** ``[B, 1, 32, 32]`` (frames at ``S × S`` give ``S/8 × S/8``; the audio
images must then be ``S/4 × S/4`` and the face map ``S/8 × S/8``). :func:`saliency_from_logits` turns
it into maps.

Upstream defects are switches of :class:`Liu20Config` or arguments:

* upstream reshapes the audio features with the batch size it was built for (12) and fails for any other
  batch; here any ``B`` works, and ``fixed_batch=12`` restores the check (``ValueError`` otherwise);
* the 2-cell ConvLSTM runs over the **batch axis** (the ``B`` frames are its time steps) with a zero
  state at every call; :meth:`Liu20Net.forward` takes and returns the state (``state=…``,
  ``return_state=True``) so a caller can carry it across chunks;
* the demo post-processing applies a softmax over the height axis only; :func:`saliency_from_logits`
  uses a spatial softmax by default and ``softmax="height"`` reproduces upstream.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from avsal.models.liu20.features import RGB_MEAN

__all__ = ["ConvLSTMCell", "LSTMState", "Liu20Config", "Liu20Net", "RGB_MEAN", "SOFTMAX_MODES",
           "saliency_from_logits"]

#: Ways to turn logits into maps (:func:`saliency_from_logits`).
SOFTMAX_MODES = ("spatial", "height", "none")

#: State of the two ConvLSTM cells: ``[(h0, c0), (h1, c1)]``, each ``[1, C_i, h, w]``.
LSTMState = list


@dataclass(frozen=True)
class Liu20Config:
    """Network configuration (defaults = the released network).

    Attributes:
        lstm_channels: hidden channels of the ConvLSTM cells (upstream ``[128, 64]``).
        fixed_batch: ``None`` (any batch) or the batch size upstream was built for (12); when set, a
            forward pass with another batch raises ``ValueError`` (upstream's reshape fails there).
    """

    lstm_channels: tuple[int, ...] = (128, 64)
    fixed_batch: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class ConvLSTMCell(nn.Module):
    """ConvLSTM cell without peepholes (docs/liu20.md §Network).

    Gates ``i, f, o = σ(W_x* x + W_h* h)``, candidate ``g = tanh(W_xc x + W_hc h)``,
    ``c' = f·c + i·g``, ``h' = o·tanh(c')``. All convolutions are ``k × k`` with "same" padding; the
    input convolutions ``Wx*`` have a bias, the hidden ones ``Wh*`` have none (upstream key names).

    Args:
        in_channels: channels of ``x``.
        hidden: channels of ``h`` and ``c``.
        kernel_size: odd kernel size (3).
    """

    def __init__(self, in_channels: int, hidden: int, kernel_size: int = 3):
        super().__init__()
        p = kernel_size // 2
        self.hidden = hidden
        for g in "ifco":
            setattr(self, f"Wx{g}", nn.Conv2d(in_channels, hidden, kernel_size, 1, p, bias=True))
            setattr(self, f"Wh{g}", nn.Conv2d(hidden, hidden, kernel_size, 1, p, bias=False))

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: ``x [N, C_in, H, W]``, ``h, c [N, hidden, H, W]`` → ``(h', c')``."""
        i = torch.sigmoid(self.Wxi(x) + self.Whi(h))
        f = torch.sigmoid(self.Wxf(x) + self.Whf(h))
        c = f * c + i * torch.tanh(self.Wxc(x) + self.Whc(h))
        o = torch.sigmoid(self.Wxo(x) + self.Who(h))
        return o * torch.tanh(c), c


def _conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2)


class _FlowConv(nn.Sequential):
    """Conv (stride 2, bias) + LeakyReLU(0.1): upstream's ``flow_convN`` (key ``flow_convN.0``)."""

    def __init__(self, cin: int, cout: int, k: int):
        super().__init__(nn.Conv2d(cin, cout, k, stride=2, padding=(k - 1) // 2), nn.LeakyReLU(0.1))


class _FlowDeconv(nn.Sequential):
    """ConvTranspose (k4 s2 p1, no bias) + LeakyReLU(0.1): upstream's ``flow_deconv5`` (key ``.0``)."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False), nn.LeakyReLU(0.1))


class Liu20Net(nn.Module):
    """Visual (appearance + motion + ConvLSTM), audio (3D CNN on log-mel images) and face-map fusion.

    Parameter names equal upstream's checkpoint keys (71 tensors, 7,274,113 values; docs/liu20.md).

    Args:
        config: :class:`Liu20Config`; keyword overrides (``fixed_batch=12``) are accepted instead.
    """

    def __init__(self, config: Liu20Config | None = None, **overrides):
        super().__init__()
        cfg = config or Liu20Config()
        if overrides:
            cfg = Liu20Config(**{**asdict(cfg), **overrides})
        cfg = Liu20Config(lstm_channels=tuple(cfg.lstm_channels), fixed_batch=cfg.fixed_batch)
        self.config = cfg
        # appearance: VGG-16 prefix (conv3_2.. and conv4_2.. are absent upstream)
        self.conv1_1, self.conv1_2 = _conv(3, 64), _conv(64, 64)
        self.conv2_1, self.conv2_2 = _conv(64, 128), _conv(128, 128)
        self.conv3_1, self.conv4_1 = _conv(128, 256), _conv(256, 512)
        # motion: FlowNet-S-like on cat(x1, x2)
        self.flow_conv1 = _FlowConv(6, 64, 7)
        self.flow_conv2 = _FlowConv(64, 128, 5)
        self.flow_conv3 = _FlowConv(128, 256, 5)
        self.flow_deconv5 = _FlowDeconv(256, 128)
        # combine motion (128) + appearance (512)
        self.combine_conv1, self.combine_conv2, self.combine_conv3 = _conv(640, 256), _conv(256, 128), _conv(128, 128)
        chans = (128, *cfg.lstm_channels)
        self.n_cells = len(cfg.lstm_channels)
        for i in range(self.n_cells):
            setattr(self, f"cell{i}", ConvLSTMCell(chans[i], chans[i + 1], 3))
        vis = chans[-1]
        # audio: 3D CNN over [1, 16, S/4, S/4]
        self.conv1_3d = nn.Conv3d(1, 16, 3, padding=1)
        self.conv2a_3d = nn.Conv3d(16, 32, 3, padding=1)
        self.conv2b_3d = nn.Conv3d(32, 32, 3, padding=1)
        self.conv3_3d = nn.Conv3d(32, 64, 3, padding=1)
        aud = 64 * 2  # 64 channels × 2 remaining time steps of 16
        # "concate" fusion
        # (1: per modality before the sum; 2: on the sum concatenated with the raw modality)
        self.conv_normal_visual1, self.conv_normal_visual2 = _conv(vis, 64), _conv(64 + vis, 64)
        self.conv_normal_audio1, self.conv_normal_audio2 = _conv(aud, 64), _conv(64 + aud, 64)
        self.conv_normal_face1, self.conv_normal_face2 = _conv(1, 64), _conv(64 + 1, 64)
        self.visual_hmap = nn.Conv2d(192, 1, 1)

    # -- branches -------------------------------------------------------------------------------------

    def appearance(self, x2: torch.Tensor) -> torch.Tensor:
        """``[B, 3, S, S]`` → ``[B, 512, S/8, S/8]`` (conv1_1 … conv4_1, ReLU, three 2×2 max-pools)."""
        x = F.relu(self.conv1_2(F.relu(self.conv1_1(x2))))
        x = F.relu(self.conv2_2(F.relu(self.conv2_1(F.max_pool2d(x, 2)))))
        x = F.relu(self.conv3_1(F.max_pool2d(x, 2)))
        return F.relu(self.conv4_1(F.max_pool2d(x, 2)))

    def motion(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """Frames ``t − 5`` and ``t``, ``[B, 3, S, S]`` each → ``[B, 128, S/8, S/8]``."""
        y = self.flow_conv3(self.flow_conv2(self.flow_conv1(torch.cat((x1, x2), 1))))
        return self.flow_deconv5(F.max_pool2d(y, 2))

    def visual(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """Combined motion + appearance features before the ConvLSTM, ``[B, 128, S/8, S/8]``."""
        z = torch.cat((self.motion(x1, x2), self.appearance(x2)), 1)
        return F.relu(self.combine_conv3(F.relu(self.combine_conv2(F.relu(self.combine_conv1(z))))))

    def zero_state(self, like: torch.Tensor) -> LSTMState:
        """Zero ConvLSTM state for features ``like`` ``[B, C, h, w]`` (what upstream uses at every call)."""
        h, w = like.shape[-2:]
        return [(like.new_zeros(1, c.hidden, h, w), like.new_zeros(1, c.hidden, h, w)) for c in self._cells()]

    def _cells(self) -> list[ConvLSTMCell]:
        return [getattr(self, f"cell{i}") for i in range(self.n_cells)]

    def temporal(self, z: torch.Tensor, state: LSTMState | None = None) -> tuple[torch.Tensor, LSTMState]:
        """Run the ConvLSTM over the batch axis: ``z [B, 128, h, w]`` (B consecutive frames) →
        ``([B, C_last, h, w], state after the last frame)``; ``state=None`` starts from zeros."""
        state = list(state) if state is not None else self.zero_state(z)
        outs = []
        for t in range(z.shape[0]):
            x = z[t:t + 1]
            for i, cell in enumerate(self._cells()):
                x, c = cell(x, *state[i])
                state[i] = (x, c)
            outs.append(x)
        return torch.cat(outs), state

    def audio_features(self, mel: torch.Tensor) -> torch.Tensor:
        """``[B, 1, 16, A, A]`` → ``[B, 128, A/2, A/2]``: 3D convs + pools, then the 64 channels × 2 time
        steps are stacked channel-major (channel ``2k + t``), as upstream's reshape does."""
        a = F.max_pool3d(F.relu(self.conv1_3d(mel)), 2)
        a = F.relu(self.conv2b_3d(F.relu(self.conv2a_3d(a))))
        a = F.max_pool3d(a, (2, 1, 1))
        a = F.max_pool3d(F.relu(self.conv3_3d(a)), (2, 1, 1))
        return a.reshape(a.shape[0], -1, *a.shape[-2:])

    def fuse(self, v: torch.Tensor, a: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        """The ``concate`` fusion: per-modality 3×3 convs, their **sum**, that sum concatenated with each raw
        modality, 3×3 convs, and a 1×1 read-out → logit ``[B, 1, h, w]``."""
        s = (F.relu(self.conv_normal_visual1(v)) + F.relu(self.conv_normal_audio1(a))
             + F.relu(self.conv_normal_face1(face)))
        fv = F.relu(self.conv_normal_visual2(torch.cat((s, v), 1)))
        fa = F.relu(self.conv_normal_audio2(torch.cat((s, a), 1)))
        ff = F.relu(self.conv_normal_face2(torch.cat((s, face), 1)))
        return self.visual_hmap(torch.cat((fv, fa, ff), 1))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, mel: torch.Tensor, face: torch.Tensor,
                state: LSTMState | None = None, return_state: bool = False):
        """Saliency logits of ``B`` consecutive frames (see the module docstring for the inputs).

        Args:
            x1, x2: ``[B, 3, S, S]`` frames ``t − 5`` and ``t``.
            mel: ``[B, 1, 16, S/4, S/4]`` log-mel images (0–255).
            face: ``[B, 1, S/8, S/8]`` normalised GMM face maps.
            state: ConvLSTM state carried from the previous chunk (``None``: zeros, as upstream).
            return_state: also return the state after the last frame.

        Returns:
            logit ``[B, 1, S/8, S/8]``, or ``(logit, state)`` with ``return_state``.

        Raises:
            ValueError: inputs of different batch sizes, or a batch other than ``config.fixed_batch``.
        """
        B = x2.shape[0]
        if not (x1.shape[0] == mel.shape[0] == face.shape[0] == B):
            raise ValueError(f"Liu20Net: batch sizes differ: x1 {x1.shape[0]}, x2 {B}, mel {mel.shape[0]}, "
                             f"face {face.shape[0]}")
        if self.config.fixed_batch is not None and B != self.config.fixed_batch:
            raise ValueError(f"Liu20Net: fixed_batch={self.config.fixed_batch} (upstream's audio reshape) but "
                             f"got a batch of {B}")
        v, new_state = self.temporal(self.visual(x1, x2), state)
        logit = self.fuse(v, self.audio_features(mel), face)
        return (logit, new_state) if return_state else logit


def saliency_from_logits(logit: torch.Tensor, softmax: str = "spatial") -> torch.Tensor:
    """Logits ``[B, 1, h, w]`` (or ``[B, h, w]``) → maps ``float32 [B, h, w]`` in [0, 1].

    Args:
        logit: network output.
        softmax: ``"spatial"`` (softmax over the ``h·w`` pixels of each map; default), ``"height"``
            (upstream demo: softmax over the height axis, i.e. each column normalised on its own;
            docs/liu20.md §Output) or ``"none"`` (the logits themselves).

    Returns:
        Each map min–max scaled to [0, 1] (upstream scales to 0–255); a constant map becomes all zeros.

    Raises:
        ValueError: an unknown ``softmax``.
    """
    if softmax not in SOFTMAX_MODES:
        raise ValueError(f"softmax must be one of {SOFTMAX_MODES}, got {softmax!r}")
    x = logit.float()
    if x.ndim == 4:
        x = x[:, 0]
    if softmax == "spatial":
        x = torch.softmax(x.flatten(1), 1).view_as(x)
    elif softmax == "height":
        x = torch.softmax(x, 1)
    lo = x.flatten(1).amin(1)[:, None, None]
    span = x.flatten(1).amax(1)[:, None, None] - lo
    return torch.where(span > 0, (x - lo) / span.clamp_min(1e-30), torch.zeros_like(x))
