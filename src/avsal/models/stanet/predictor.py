"""Video inference with STA: ``avsal predict VIDEO --model stanet-sta --weights W``.

Frame t of the *sampled* sequence is predicted from the triplet (t, t−1, t+1) and the one-second audio
windows centred on those frames; at the ends the missing neighbour is replaced by frame t itself
(replicate padding). In the inference contract of :mod:`avsal.models.base` this is
``ClipSpec(length=3, anchor=1, source="sampled", edge="replicate")``. Upstream ``test.py`` pushes every
triplet through the whole network, so each frame goes through ResNeXt-101 and the audio net three times;
here ``encode`` runs each frame **once** (:meth:`STANet.encode`, batched) and ``decode`` reuses its features
in the three triplets that need them.

Output map (``docs/stanet.md`` §5): the centre frame's finest read-out ``f0_0`` (or ``f0_1``), sigmoid, divided
by its max, optionally blurred with a Gaussian of ``blur_sigma`` pixels at the network resolution (σ = 7
as in the CVPR-time test script; 0 disables it), then resized to the frame size by the caller.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Iterator

import cv2
import numpy as np
import torch

from avsal.io.audio import AudioTrack, stft_features_at
from avsal.io.video import Frame
from avsal.models.base import AudioSpec, ClipItem, ClipSpec, Prediction, map_frames, run_clips
from avsal.models.stanet.networks import FrameFeatures, STANet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class STAInferenceConfig:
    """How STA is run on a video.

    Attributes:
        input_size: square network input (356 as upstream; frames are resized without keeping the
            aspect ratio, like upstream's square ``Resize``).
        output: ``"f0_0"`` (finest, default) or ``"f0_1"`` (stride-16 stage) of the centre frame.
        blur_sigma: Gaussian blur σ in pixels at ``input_size`` (0 = none).
        batch_size: frames encoded per forward pass.
        device: ``"cpu"`` or ``"cuda"``.
        bf16: bfloat16 autocast (≈2–3× faster on CPUs with AVX512-BF16 and on GPUs).
        channels_last: channels-last memory format.
        resize: frame resize to ``input_size``: ``"pil"`` (default, upstream ``test.py``'s PIL bilinear,
            antialiased when shrinking) or ``"cv2"`` (``INTER_LINEAR``, aliased); see :func:`preprocess`.
    """

    input_size: int = 356
    output: str = "f0_0"
    blur_sigma: float = 7.0
    batch_size: int = 8
    device: str = "cpu"
    bf16: bool = False
    channels_last: bool = False
    resize: str = "pil"

    def to_dict(self) -> dict:
        return asdict(self)


def preprocess(rgb: np.ndarray, size: int, resize: str = "pil") -> torch.Tensor:
    """uint8 ``[H, W, 3]`` → float32 ``[3, size, size]``, bilinear resize, ImageNet-normalised.

    ``resize``: ``"pil"`` (upstream) or ``"cv2"`` (:func:`avsal.data.transforms.resize_square`).
    """
    from avsal.data.transforms import resize_square

    x = resize_square(rgb, size, resize).astype(np.float32) / 255.0
    x = (x - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def set_memory_format(net: torch.nn.Module, fmt: torch.memory_format) -> None:
    """Put every 4-D parameter (2-D convolutions) in ``fmt`` in place; Conv3d/Linear weights stay as they are."""
    with torch.no_grad():
        for p in net.parameters():
            if p.ndim == 4:
                p.data = p.data.contiguous(memory_format=fmt)


def _cat(feats: list[FrameFeatures]) -> FrameFeatures:
    return FrameFeatures(*(torch.cat([getattr(f, n) for f in feats]) for n in ("s0", "s1", "x", "av")))


class STAVideoModel:
    """Streaming STA inference with per-frame feature reuse (see the module docstring).

    Args:
        net: a :class:`STANet` with weights loaded.
        config: :class:`STAInferenceConfig`; keyword overrides allowed.

    A clip model of :mod:`avsal.models.base`: ``encode`` gives per-frame :class:`FrameFeatures`, ``decode``
    maps triplets (in temporal order t−1, t, t+1) to float32 ``[input_size, input_size]`` maps in [0, 1].
    ``stream(frames, audio)`` runs it over a frame iterator (:func:`avsal.models.base.run_clips`).
    """

    name = "stanet-sta"
    needs_weights = True
    clip = ClipSpec(length=3, anchor=1, source="sampled", edge="replicate")
    #: upstream ``audiostft.py``: channel mean, then resampy kaiser_best to 16 kHz (as ``avsal prepare``).
    audio = AudioSpec(sample_rate=16000, mix="mean", resampler="resampy")

    def __init__(self, net: STANet, config: STAInferenceConfig | None = None, **overrides):
        cfg = config or STAInferenceConfig()
        if overrides:
            cfg = STAInferenceConfig(**{**asdict(cfg), **overrides})
        if cfg.output not in ("f0_0", "f0_1"):
            raise ValueError(f"output must be 'f0_0' or 'f0_1', got {cfg.output!r}")
        self.config = cfg
        self.batch_size = max(1, cfg.batch_size)
        self.device = torch.device(cfg.device)
        self.net = net.eval().to(self.device)
        set_memory_format(self.net, torch.channels_last if cfg.channels_last else torch.contiguous_format)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.bf16)

    @torch.inference_mode()
    def encode(self, frames: list[Frame], audio: AudioTrack | None) -> list[FrameFeatures]:
        """Encode frames once: ``len(frames)`` per-frame :class:`FrameFeatures` (batch 1 each)."""
        cfg = self.config
        x = torch.stack(map_frames(lambda f: preprocess(f.rgb, cfg.input_size, cfg.resize), frames)).to(self.device)
        a = torch.from_numpy(stft_features_at(audio, [f.time for f in frames])).to(self.device)
        if self.config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            feats = self.net.encode(x, a)
        return [feats.index(slice(i, i + 1)) for i in range(len(frames))]

    def decode(self, clips: list[list[ClipItem]], audio: AudioTrack | None = None,
               frame_hw: tuple[int, int] | None = None) -> np.ndarray:
        """Maps ``float32 [N, S, S]`` in [0, 1] of N triplets ``[t−1, t, t+1]`` of encoded frames."""
        return self.decode_triplets([c[1].data for c in clips], [c[0].data for c in clips],
                                    [c[2].data for c in clips])

    @torch.inference_mode()
    def decode_triplets(self, centre: list[FrameFeatures], prev: list[FrameFeatures], nxt: list[FrameFeatures]
                        ) -> np.ndarray:
        """Saliency maps ``float32 [N, S, S]`` in [0, 1] of N centre frames from their neighbours' features."""
        size = (self.config.input_size, self.config.input_size)
        with self._autocast():
            out1, out0 = self.net.decode_centre(_cat(centre), _cat(prev), _cat(nxt), size)
        return self.postprocess(out0 if self.config.output == "f0_0" else out1)

    def postprocess(self, logits: torch.Tensor) -> np.ndarray:
        """Logits ``[N, 1, S, S]`` → maps ``float32 [N, S, S]``: sigmoid, / max, optional blur, / max."""
        sal = torch.sigmoid(logits.float())[:, 0]
        sal = sal / sal.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
        maps = sal.cpu().numpy().astype(np.float32)
        if self.config.blur_sigma > 0:
            maps = np.stack([cv2.GaussianBlur(m, (0, 0), self.config.blur_sigma) for m in maps])
            maps /= np.maximum(maps.reshape(len(maps), -1).max(1), 1e-12)[:, None, None]
        return maps

    def stream(self, frames: Iterable[Frame], audio: AudioTrack | None = None) -> Iterator[Prediction]:
        """Predict every selected frame (unselected frames are skipped), in order.

        A missing soundtrack is replaced by silence (all-zero features); the caller records the warning.

        Raises:
            ValueError: a soundtrack that is not at 16 kHz.
        """
        if audio is not None and audio.sample_rate != 16000:
            raise ValueError("stanet-sta needs the soundtrack at 16 kHz")
        return run_clips(self, frames, audio)

    @torch.inference_mode()
    def naive_triplets(self, frames: list[Frame], audio: AudioTrack | None, batch_size: int = 2) -> np.ndarray:
        """Upstream-style reference: every triplet through the full network (``forward``), ``batch_size``
        triplets at a time; returns the same maps as :meth:`stream` (used by tests and the benchmark)."""
        n = len(frames)
        x = torch.stack([preprocess(f.rgb, self.config.input_size, self.config.resize) for f in frames])
        a = torch.from_numpy(stft_features_at(audio, [f.time for f in frames]))
        order = [(t, max(t - 1, 0), min(t + 1, n - 1)) for t in range(n)]
        maps = []
        for i in range(0, n, batch_size):
            trip = order[i:i + batch_size]
            xf = torch.stack([x[list(o)] for o in trip]).to(self.device)
            af = torch.stack([a[list(o)] for o in trip]).to(self.device)
            with self._autocast():
                outs = self.net(xf, af)
            maps.append(self.postprocess(outs[1] if self.config.output == "f0_0" else outs[0]))
        return np.concatenate(maps)
