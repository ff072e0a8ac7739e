"""Video inference with Liu'20: ``avsal predict VIDEO --model liu20 --weights W``.

Output frame ``t`` is upstream's ``x2`` (docs/liu20.md §Inputs, "Alignment"): the network sees frame ``t``
(appearance), frame ``t − 5`` (motion, with ``x1``), the audio images of frames ``t − 8 … t + 7`` and the
face map of frame ``t``. In the inference contract of :mod:`avsal.models.base` this is
``ClipSpec(length=32, anchor=16, source="decoded", edge="replicate")``: the 32 decoded frames
``t − 16 … t + 15`` (clamped to the video) carry the frames and the presentation times the inputs need,
and the clamping tells where the video ends, so the 16-frame audio window is moved inside the video
exactly as upstream does (:func:`~avsal.models.liu20.features.mel_window`). Frames ``t < 5`` use frame 0
as ``x1`` (upstream predicts nothing before frame 5).

Differences from upstream ``main.py``, all deliberate:

* every frame is predicted (upstream drops the last partial batch of 12 and frames 0–4);
* the frame rate is the video's (presentation times; upstream hard-codes 24 fps);
* the ConvLSTM state is reset every ``lstm_reset`` predicted frames (12, as upstream's batches; 0 = never),
  independently of the batch size; upstream's chunks start at frame 5, ours at the first predicted frame
  (``lstm_phase=5`` gives upstream's chunks);
* the output is a spatial softmax (``softmax="height"`` gives upstream's per-column softmax), min–max
  scaled to [0, 1] (upstream: 0–255) and resized to the frame by :mod:`avsal.predict`;
* the face maps are computed on the fly (:mod:`avsal.models.liu20.faces`); upstream reads pre-computed
  ones. With the default source (``"auto"``/``"avsal"``: :class:`~avsal.models.liu20.faces.TrackedFaceSource`)
  ``encode`` tracks the faces of every encoded frame in order and ``decode`` scores who speaks from the
  clip's frames around the output frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch

from avsal.io.audio import AudioTrack
from avsal.io.video import Frame
from avsal.models.base import AudioSpec, ClipItem, ClipSpec, Prediction, run_clips
from avsal.faces import FaceTrackConfig
from avsal.models.liu20.faces import (FaceObservation, GMMConfig, HaarFaceSource, TrackedFaceSource,
                                      gmm_face_map, normalise_gmm)
from avsal.models.liu20.features import (MEL_WINDOW, SAMPLE_RATE, frame_mel_image, log_mel, mel_window,
                                         preprocess_frame)
from avsal.models.liu20.networks import SOFTMAX_MODES, Liu20Net, saliency_from_logits

__all__ = ["FACE_SOURCES", "FaceSource", "Liu20InferenceConfig", "Liu20VideoModel", "resolve_face_source"]

#: ``face_source(rgb uint8 [H, W, 3], time s, audio AudioTrack | None) -> (boxes [N, ≥4] px, speaking [N])``.
FaceSource = Callable[[np.ndarray, float, "AudioTrack | None"], tuple[np.ndarray, np.ndarray]]
#: Names accepted by :func:`resolve_face_source`.
FACE_SOURCES = ("auto", "avsal", "haar", "none")

#: Frames on each side of the output frame in a clip (covers the ±8 audio window after moving it inside).
_HALF = 16


@dataclass(frozen=True)
class Liu20InferenceConfig:
    """How Liu'20 is run on a video.

    Attributes:
        input_size: square frame size (256 as upstream; the audio images are ``input_size / 4``).
        frame_skip: frames between ``x1`` and ``x2`` (5 as upstream; at most 16).
        lstm_reset: reset the ConvLSTM state every this many predicted frames (12 = upstream's batches;
            0 = carry it through the whole video).
        lstm_phase: the resets fall on predicted frames ``k`` with ``(k − lstm_phase) % lstm_reset == 0`` (and
            on the first one); 5 reproduces upstream's batches, whose first ``x2`` is frame 5.
        softmax: ``"spatial"``, ``"height"`` (upstream demo) or ``"none"`` (:func:`saliency_from_logits`).
        face_source: ``"auto"`` (``"avsal"`` if ``avsal.faces`` and its detector can be loaded, else
            ``"haar"``), ``"avsal"`` (:class:`TrackedFaceSource`: ``avsal.faces`` tracks with speaker
            scores), ``"haar"`` (OpenCV Haar per frame, speaking score 1) or ``"none"`` (no faces: a zero
            map); a callable can be given to :class:`Liu20VideoModel` instead.
        gmm: :class:`GMMConfig` of the face map.
        tracking: :class:`avsal.faces.FaceTrackConfig` of the ``"avsal"`` source (detector, tracker,
            ``detect_every``, ``sync_window``, ``audio_window``, ``rho0``).
        batch_size: clips per forward pass.
        device: ``"cpu"`` or ``"cuda"``.
    """

    input_size: int = 256
    frame_skip: int = 5
    lstm_reset: int = 12
    lstm_phase: int = 0
    softmax: str = "spatial"
    face_source: Any = "auto"  # a name of FACE_SOURCES, or a callable (see FaceSource)
    gmm: GMMConfig = GMMConfig()
    tracking: FaceTrackConfig = FaceTrackConfig()
    batch_size: int = 12
    device: str = "cpu"

    def to_dict(self) -> dict:
        return asdict(self)


def _none_source(rgb, time, audio):
    return np.zeros((0, 5), np.float32), np.zeros(0, np.float32)


def resolve_face_source(name: str, tracking: FaceTrackConfig | None = None) -> FaceSource:
    """A face source by name (see :attr:`Liu20InferenceConfig.face_source`).

    Args:
        name: one of :data:`FACE_SOURCES`.
        tracking: the :class:`avsal.faces.FaceTrackConfig` of the ``"avsal"`` source.

    Returns:
        ``"avsal"``/``"auto"``: a :class:`TrackedFaceSource`; ``"haar"``: a :class:`HaarFaceSource`;
        ``"none"``: a source that never finds a face.

    Raises:
        ValueError: unknown name, or ``"avsal"`` when the ``avsal.faces`` detector cannot be loaded
            (e.g. ``dlib`` missing for the default ``dlib_hog`` backend).
    """
    if name not in FACE_SOURCES:
        raise ValueError(f"face_source must be one of {FACE_SOURCES} or a callable, got {name!r}")
    if name == "none":
        return _none_source
    if name in ("auto", "avsal"):
        try:
            return TrackedFaceSource(tracking)
        except ImportError as e:
            if name == "avsal":
                raise ValueError(f"face_source='avsal' cannot load its face detector: {e}") from None
    return HaarFaceSource()


@dataclass
class _Encoded:
    x: torch.Tensor        # [3, S, S] preprocessed frame
    rgb: np.ndarray        # the frame, for the face source
    time: float
    index: int
    faces: FaceObservation | None = None  # tracked faces (TrackedFaceSource only)


class Liu20VideoModel:
    """Liu'20 as a clip model of :mod:`avsal.models.base` (see the module docstring).

    Args:
        net: a :class:`Liu20Net` with weights loaded.
        config: :class:`Liu20InferenceConfig`; keyword overrides allowed.
        face_source: a :data:`FaceSource` callable overriding ``config.face_source`` (e.g.
            :class:`~avsal.models.liu20.faces.PrecomputedFaceSource` with a tracker's boxes and speaker
            scores, or annotated boxes).

    Raises:
        ValueError: a bad ``softmax``, ``frame_skip`` or ``face_source``.
    """

    name = "liu20"
    needs_weights = True
    clip = ClipSpec(length=2 * _HALF, anchor=_HALF, source="decoded", edge="replicate")
    #: ``librosa.load`` default: 22,050 Hz, mono as the channel mean.
    audio = AudioSpec(sample_rate=SAMPLE_RATE, mix="mean")

    def __init__(self, net: Liu20Net, config: Liu20InferenceConfig | None = None,
                 face_source: FaceSource | None = None, **overrides):
        cfg = config or Liu20InferenceConfig()
        if overrides:
            cfg = replace(cfg, **overrides)
        if cfg.softmax not in SOFTMAX_MODES:
            raise ValueError(f"softmax must be one of {SOFTMAX_MODES}, got {cfg.softmax!r}")
        if not 1 <= cfg.frame_skip <= _HALF:
            raise ValueError(f"frame_skip must be in 1..{_HALF}, got {cfg.frame_skip}")
        if cfg.input_size % 8:
            raise ValueError(f"input_size must be a multiple of 8, got {cfg.input_size}")
        if face_source is not None:
            cfg = replace(cfg, face_source="callable")  # recorded as such in meta.json
        src = face_source if face_source is not None else resolve_face_source(cfg.face_source, cfg.tracking)
        if cfg.face_source == "auto":
            cfg = replace(cfg, face_source="avsal" if isinstance(src, TrackedFaceSource) else "haar")
        self.config = cfg
        self.batch_size = max(1, cfg.batch_size)
        self.device = torch.device(cfg.device)
        self.net = net.eval().to(self.device)
        self.face_source = src
        #: ``True`` when the face source tracks faces across frames (:class:`TrackedFaceSource`).
        self.tracked = bool(getattr(src, "tracked", False))
        self.reset()

    def reset(self) -> None:
        """Forget the ConvLSTM state and the cached spectrogram (a new video starts)."""
        self._state = None
        self._count = 0
        self._last_index = -1
        self._audio_ref = None
        self._logmel = None
        if getattr(self, "tracked", False):
            self.face_source.reset()

    # -- per-frame work --------------------------------------------------------------------------------

    def encode(self, frames: list[Frame], audio: AudioTrack | None = None) -> list[_Encoded]:
        """Resize and normalise each frame once (``[3, S, S]`` float32); with a tracked face source, also
        track its faces (frames arrive here in order, each once: :func:`avsal.models.base.run_clips`)."""
        S = self.config.input_size
        return [_Encoded(torch.from_numpy(preprocess_frame(f.rgb, S)), f.rgb, f.time, f.index,
                         self.face_source.observe(f.rgb, f.index, f.time, audio) if self.tracked else None)
                for f in frames]

    def _spectrogram(self, audio: AudioTrack | None) -> np.ndarray | None:
        if audio is None:
            return None
        if self._audio_ref is not audio:
            if audio.sample_rate != SAMPLE_RATE:
                raise ValueError(f"liu20 needs the soundtrack at {SAMPLE_RATE} Hz, got {audio.sample_rate}")
            self._audio_ref, self._logmel = audio, (log_mel(audio.samples) if len(audio.samples) else None)
        return self._logmel

    def audio_images(self, clip: list[ClipItem], audio: AudioTrack | None) -> np.ndarray:
        """float32 ``[1, 16, S/4, S/4]`` audio images of the clip's output frame (0–255; zeros without audio)."""
        side = self.config.input_size // 4
        logmel = self._spectrogram(audio)
        if logmel is None:
            return np.zeros((1, MEL_WINDOW, side, side), np.float32)
        t = clip[_HALF].index
        by_index = {c.index: c for c in clip}
        end_known = clip[-1].index < t + _HALF  # clamped: the video ends inside the clip
        n = clip[-1].index + 1 if end_known else t + _HALF + 1
        start = audio.start_time or 0.0
        imgs = [frame_mel_image(logmel, by_index[j].time - start, side) for j in mel_window(t, n)]
        return np.stack(imgs)[None]

    def face_map(self, item: _Encoded, audio: AudioTrack | None, clip: list[ClipItem] | None = None) -> np.ndarray:
        """Normalised GMM face map ``float32 [1, S/8, S/8]`` of one frame (``item``, the clip's output frame).

        With a tracked source the boxes are ``item``'s tracks and the speaking scores come from the clip's
        frames (:meth:`TrackedFaceSource.speaking`); otherwise the source is called on the frame alone.
        """
        if self.tracked and item.faces is not None:
            window = [c.data.faces for c in (clip or []) if c.data.faces is not None] or [item.faces]
            boxes, speaking = item.faces.boxes, self.face_source.speaking(item.faces, window)
        else:
            boxes, speaking = self.face_source(item.rgb, item.time, audio)
        cfg = replace(self.config.gmm, size=self.config.input_size // 8)
        gmm = gmm_face_map(boxes, speaking, item.rgb.shape[:2], cfg)
        return normalise_gmm(gmm)[None]

    # -- clips ------------------------------------------------------------------------------------------

    @torch.inference_mode()
    def decode(self, clips: list[list[ClipItem]], audio: AudioTrack | None = None,
               frame_hw: tuple[int, int] | None = None) -> np.ndarray:
        """Maps ``float32 [N, S/8, S/8]`` in [0, 1] of N clips (in temporal order; the ConvLSTM runs over them)."""
        if clips[0][_HALF].index <= self._last_index or (self._count and audio is not self._audio_ref):
            self.reset()  # a new video (predict may reuse one model for several)
        dev = self.device
        x2 = torch.stack([c[_HALF].data.x for c in clips]).to(dev)
        x1 = torch.stack([c[_HALF - self.config.frame_skip].data.x for c in clips]).to(dev)
        mel = torch.from_numpy(np.stack([self.audio_images(c, audio) for c in clips])).to(dev)
        face = torch.from_numpy(np.stack([self.face_map(c[_HALF].data, audio, c) for c in clips])).to(dev)
        z = self.net.visual(x1, x2)
        outs = []
        for i, c in enumerate(clips):
            k, r = self._count, self.config.lstm_reset
            if r and (k == 0 or (k - self.config.lstm_phase) % r == 0):
                self._state = None
            v, self._state = self.net.temporal(z[i:i + 1], self._state)
            outs.append(v)
            self._count += 1
            self._last_index = c[_HALF].index
        logit = self.net.fuse(torch.cat(outs), self.net.audio_features(mel), face)
        return saliency_from_logits(logit, self.config.softmax).cpu().numpy().astype(np.float32)

    def stream(self, frames: Iterable[Frame], audio: AudioTrack | None = None) -> Iterator[Prediction]:
        """Predict every selected frame of one video, in order (the state is reset first)."""
        self.reset()
        return run_clips(self, frames, audio)
