"""Video inference with STAViS: ``avsal predict VIDEO --model stavis-av|stavis-visual --weights W``.

Output frame t (0-based decoded index) comes from the 16-frame clip t−8 … t+7 (t is the clip's 9th frame, as
upstream ``test_sal.py`` names its outputs) and, for ``stavis-av``, the audio excerpt of those frames
(:mod:`avsal.models.stavis.preprocess`). Each frame is preprocessed once (:meth:`StavisVideoModel.encode`) and
reused by the 16 clips that contain it; clips are batched (upstream runs one clip per output frame and pads
every batch to 128).

Edge rule (``docs/stavis.md`` §Inference): positions before the first or after the last frame repeat the
nearest frame (``replicate``), so frames 1–8 and the last 7 (which upstream leaves without a prediction or
fills from loop-padded clips) are predicted from clips whose 9th frame is still t. The audio excerpt spans
the clip's first to last (clamped) frames, as upstream.

Post-processing (upstream ``test_sal.py`` and ``eval_code/postprocessMap.m``): ``sigmoid`` of the last output,
min-max scaled to [0, 1] per map, then (``blur_sigma`` > 0) a Gaussian blur of σ = 2 px at 112² (kernel
2⌈3σ⌉+1, symmetric borders), as the evaluation code applies before resizing to the frame size.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from avsal.models.base import AudioSpec, ClipSpec, map_frames
from avsal.models.stavis import preprocess as pp

#: The 0-based position in the 16-frame clip of the frame a map belongs to (upstream: the 9th frame).
ANCHOR = 8


@dataclass(frozen=True)
class StavisInferenceConfig:
    """How STAViS is run on a video.

    Attributes:
        batch_size: clips per forward pass.
        device: ``"cpu"`` or ``"cuda"``.
        fps: the video frame rate used for the audio windows (Hz); ``None``: estimated from the decoded
            frame times (median interval, rounded to 1/1000 fps).
        normalise: min-max scale each map to [0, 1] (upstream's ``normalize_data``).
        blur_sigma: Gaussian σ in pixels at 112² (2, as the upstream evaluation; 0 = none).
        bf16: bfloat16 autocast.
    """

    batch_size: int = 8
    device: str = "cpu"
    fps: float | None = None
    normalise: bool = True
    blur_sigma: float = 2.0
    bf16: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def postprocess(prob: np.ndarray, normalise: bool = True, blur_sigma: float = 2.0) -> np.ndarray:
    """``[N, h, w]`` sigmoid maps → float32 maps in [0, 1] (min-max, then the evaluation's Gaussian blur)."""
    out = np.empty(prob.shape, np.float32)
    for i, m in enumerate(np.asarray(prob, np.float32)):
        if normalise:
            lo, hi = float(m.min()), float(m.max())
            m = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
        if blur_sigma > 0:
            k = 2 * int(np.ceil(3 * blur_sigma)) + 1
            m = cv2.GaussianBlur(m, (k, k), blur_sigma, borderType=cv2.BORDER_REFLECT)
        out[i] = np.clip(m, 0.0, 1.0)
    return out


class StavisVideoModel:
    """A STAViS network as a clip model of :mod:`avsal.models.base` (16-frame clips anchored at the 9th).

    Args:
        net: a :class:`~avsal.models.stavis.networks.Stavis` with weights loaded.
        config: :class:`StavisInferenceConfig`; keyword overrides allowed.

    ``decode`` returns float32 ``[N, 112, 112]`` maps in [0, 1]. Warnings (``UserWarning``): audio resampled
    to fit the buffer; a ``stavis-av`` run without a soundtrack (silence is used).
    """

    def __init__(self, net, config: StavisInferenceConfig | None = None, **overrides):
        import torch

        cfg = config or StavisInferenceConfig()
        if overrides:
            cfg = StavisInferenceConfig(**{**asdict(cfg), **overrides})
        self.config = cfg
        self.device = torch.device(cfg.device)
        self.net = net.eval().to(self.device)
        self.name = f"stavis-{net.config.variant}"
        self.clip = ClipSpec(length=net.config.clip_length, anchor=net.config.clip_length // 2, source="decoded",
                             edge="replicate")
        self.audio = AudioSpec(sample_rate=None, mix="mean") if net.audiovisual else None
        self.batch_size = cfg.batch_size
        self._times: dict[int, float] = {}
        self._track = None  # (id of the AudioTrack, fps, wav × 256, rate)
        self._warned_silence = False

    # -- per frame -------------------------------------------------------------------------------
    def encode(self, frames, audio=None) -> list:
        """Preprocess frames once: float32 ``[3, 112, 112]`` tensors (:func:`preprocess.frame_tensor`) on the
        model's device, so that a frame shared by 16 clips crosses to the device once."""
        import torch

        for f in frames:
            self._times[f.index] = f.time
        return [torch.from_numpy(x).to(self.device) for x in map_frames(lambda f: pp.frame_tensor(f.rgb), frames)]

    def _fps(self) -> float:
        if self.config.fps:
            return float(self.config.fps)
        idx = sorted(self._times)
        steps = [(self._times[b] - self._times[a]) / (b - a) for a, b in zip(idx, idx[1:])
                 if self._times[b] > self._times[a]]
        if not steps:
            return 25.0
        return round(1.0 / float(np.median(steps)), 3)

    def _wav(self, audio, fps: float):
        if self._track is None or self._track[0] != id(audio) or self._track[1] != fps:
            wav, rate = pp.prepare_track(audio.samples, int(audio.sample_rate), fps, self.clip.length)
            self._track = (id(audio), fps, wav, rate)
        return self._track[2], self._track[3]

    def _audio_batch(self, clips, audio) -> np.ndarray:
        n = len(clips)
        out = np.zeros((n, 1, 1, pp.AUDIO_LENGTH), np.float32)
        if audio is None or len(audio.samples) == 0:
            if not self._warned_silence:
                warnings.warn("stavis-av: the video has no audio track; predicting with silence", UserWarning,
                              stacklevel=3)
                self._warned_silence = True
            return out
        fps = self._fps()
        wav, rate = self._wav(audio, fps)
        # frame k (0-based) sits at k/fps + offset on the container timeline; align sample 0 of the excerpt
        # arithmetic with frame 0 (upstream assumes the wav starts with frame 1)
        offset = round(clips[0][0].time - clips[0][0].index / fps, 3)  # to 1 ms: timestamp jitter moves nothing
        shift = int(round((offset - float(audio.start_time)) * rate))
        padded = wav
        if shift > 0:
            padded = wav[shift:]
        elif shift < 0:
            padded = np.concatenate([np.zeros(-shift, np.float32), wav])
        for i, clip in enumerate(clips):
            first, last = clip[0].index + 1, clip[-1].index + 1
            out[i, 0, 0] = pp.audio_excerpt(padded, first, last, rate, fps)
        return out

    # -- per clip --------------------------------------------------------------------------------
    def decode(self, clips, audio, frame_hw) -> np.ndarray:
        """N clips of 16 :class:`~avsal.models.base.ClipItem` → float32 ``[N, 112, 112]`` saliency in [0, 1]."""
        import torch

        x = torch.stack([torch.stack([it.data for it in clip], dim=1) for clip in clips])  # [N, 3, T, 112, 112]
        a = None
        if self.net.audiovisual:
            a = torch.from_numpy(self._audio_batch(clips, audio)).to(self.device)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16,
                                                    enabled=self.config.bf16):
            logits = self.net(x, a)[-1]
        prob = torch.sigmoid(logits.float())[:, 0].cpu().numpy()
        return postprocess(prob, self.config.normalise, self.config.blur_sigma)
