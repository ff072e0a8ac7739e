"""Video inference with ViNet / AViNet: ``avsal predict VIDEO --model vinet|avinet --weights W``.

Upstream ``generate_result.py`` / ``generate_result_audio_visual.py`` (``docs/vinet.md`` §Inference):

* **frames**: PIL bilinear resize to 384×224 (torchvision ``Resize((224, 384))`` on a PIL image is exactly
  ``Image.resize((384, 224), BILINEAR)``; Pillow's filter is antialiased when shrinking, unlike
  ``cv2.INTER_LINEAR``, and the outputs differ measurably), ``[0, 1]``, ImageNet mean/std;
* **clips**: frame t is predicted from frames t−31 … t (``ClipSpec(32, 31, "decoded", "flip")``); for
  t < 31 from the time-reversed window t+31 … t (upstream's flipped clips), with AViNet's audio buffer
  reversed as well;
* **short videos** (upstream writes nothing below 63 frames; avsal's rule): with 32 ≤ N < 63 frames the
  reversed windows of frames t > N − 32 are completed with the last frame (nearest existing frame);
  with N < 32 every clip is padded with the first frame before t (replicate), so every frame gets a map;
* **audio** (AViNet): :func:`avsal.models.vinet.audio.clip_audio` on the native-rate, channel-averaged
  soundtrack; without a soundtrack the buffer is silence;
* **post-processing**: the 224×384 sigmoid map is resized to the frame size (cv2 bilinear), blurred
  with an 11×11 Gaussian (σ = 2.0, cv2's default for that size; reflect-101 border) and min-max normalised.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Iterator

import cv2
import numpy as np
import torch
from PIL import Image

from avsal.io.audio import AudioTrack
from avsal.io.video import Frame
from avsal.models.base import AudioSpec, ClipItem, ClipSpec, Prediction, map_frames, run_clips
from avsal.models.vinet.audio import clip_audio
from avsal.models.vinet.networks import CLIP_LENGTH, INPUT_HW, AViNet, ViNet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Upstream's blur: ``cv2.GaussianBlur(map, (11, 11), 0)`` (σ from the size: 0.3·(5 − 1) + 0.8 = 2.0).
BLUR_KSIZE = 11


@dataclass(frozen=True)
class ViNetInferenceConfig:
    """How ViNet / AViNet run on a video.

    Attributes:
        batch_size: clips per forward pass.
        device: ``"cpu"`` or ``"cuda"``.
        bf16: bfloat16 autocast (not upstream; changes outputs slightly).
        blur: upstream's 11×11 Gaussian blur at the frame size (on by default).
        fps: frame rate used for AViNet's audio windows; ``None`` = from the clip's frame times.
    """

    batch_size: int = 4
    device: str = "cpu"
    bf16: bool = False
    blur: bool = True
    fps: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def preprocess(rgb: np.ndarray, hw: tuple[int, int] = INPUT_HW) -> torch.Tensor:
    """uint8 ``[H, W, 3]`` RGB → float32 ``[3, h, w]`` (default 224×384): PIL bilinear resize, /255, ImageNet
    mean/std."""
    h, w = hw
    img = Image.fromarray(np.ascontiguousarray(rgb)).resize((w, h), Image.BILINEAR)
    x = np.asarray(img, dtype=np.float32) / 255.0
    x = (x - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def postprocess(sal: np.ndarray, frame_hw: tuple[int, int], blur: bool = True) -> np.ndarray:
    """Network map ``[224, 384]`` → float32 ``[H, W]`` in [0, 1]: cv2 bilinear resize, 11×11 blur, min-max.

    Min-max as torchvision ``make_grid(normalize=True)``: ``(x − min) / max(max − min, 1e-5)``.
    """
    h, w = frame_hw
    m = cv2.resize(np.asarray(sal, dtype=np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    if blur:
        m = cv2.GaussianBlur(m, (BLUR_KSIZE, BLUR_KSIZE), 0)
    lo, hi = float(m.min()), float(m.max())
    return ((m - lo) / max(hi - lo, 1e-5)).astype(np.float32)


class ViNetVideoModel:
    """A clip model (:mod:`avsal.models.base`) running :class:`ViNet` or :class:`AViNet` on a video.

    ``encode`` resizes and normalises each decoded frame once (``[3, 224, 384]``); ``decode`` stacks N clips
    of 32 into ``[N, 3, 32, 224, 384]`` (plus AViNet's ``[N, 1, 70560, 1]`` audio), runs the network and
    post-processes each map to the frame size (module docstring).

    Args:
        net: a ViNet or AViNet with weights loaded.
        config: :class:`ViNetInferenceConfig`; keyword overrides allowed.
    """

    clip = ClipSpec(length=CLIP_LENGTH, anchor=CLIP_LENGTH - 1, source="decoded", edge="flip")
    needs_weights = True

    def __init__(self, net: ViNet | AViNet, config: ViNetInferenceConfig | None = None, **overrides):
        cfg = config or ViNetInferenceConfig()
        if overrides:
            cfg = ViNetInferenceConfig(**{**asdict(cfg), **overrides})
        self.config = cfg
        self.batch_size = max(1, cfg.batch_size)
        self.device = torch.device(cfg.device)
        self.net = net.eval().to(self.device)
        self.uses_audio = isinstance(net, AViNet)
        self.name = "avinet" if self.uses_audio else "vinet"
        #: upstream reads the wav at its native rate; the channels are averaged.
        self.audio = AudioSpec(sample_rate=None, mix="mean") if self.uses_audio else None

    def encode(self, frames: list[Frame], audio: AudioTrack | None) -> list[torch.Tensor]:
        """Per-frame network input: float32 ``[3, 224, 384]`` per frame, on the model's device.

        Each frame is resized and sent to the device once; :meth:`decode` assembles the 32-frame clips
        there (a frame is in 32 clips: copying clips from the host would move every frame 32 times).
        """
        return [x.to(self.device) for x in map_frames(lambda f: preprocess(f.rgb), frames)]

    def audio_input(self, clips: list[list[ClipItem]], audio: AudioTrack | None) -> torch.Tensor:
        """AViNet's ``[N, 1, 70560, 1]`` audio for N clips (reversed for time-flipped clips)."""
        period = 1.0 / self.config.fps if self.config.fps else None
        bufs = [clip_audio(audio, [it.time for it in c], period, flip=bool(c and c[0].flipped)) for c in clips]
        return torch.from_numpy(np.stack(bufs)).view(len(clips), 1, -1, 1)

    @torch.inference_mode()
    def predict_clips(self, x: torch.Tensor, a: torch.Tensor | None) -> np.ndarray:
        """Network maps float32 ``[N, 224, 384]`` in (0, 1) of clips ``[N, 3, 32, 224, 384]``."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.bf16):
            x = x.to(self.device)
            out = self.net(x, a.to(self.device)) if self.uses_audio else self.net(x)
        return out.float().cpu().numpy()

    def decode(self, clips: list[list[ClipItem]], audio: AudioTrack | None = None,
               frame_hw: tuple[int, int] | None = None) -> np.ndarray:
        """Saliency maps float32 ``[N, H, W]`` in [0, 1] of N clips of 32 encoded frames (temporal order)."""
        for c in clips:
            if len(c) != CLIP_LENGTH:
                raise ValueError(f"{self.name} needs clips of {CLIP_LENGTH} frames, got {len(c)}")
        x = torch.stack([torch.stack([it.data for it in c], dim=1) for c in clips])  # [N, 3, T, h, w]
        a = self.audio_input(clips, audio) if self.uses_audio else None
        maps = self.predict_clips(x, a)
        hw = frame_hw or INPUT_HW
        return np.stack([postprocess(m, hw, self.config.blur) for m in maps])

    def stream(self, frames: Iterable[Frame], audio: AudioTrack | None = None) -> Iterator[Prediction]:
        """Predict every selected frame, in order (:func:`avsal.models.base.run_clips`)."""
        return run_clips(self, frames, audio)
