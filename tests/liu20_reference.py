"""Deterministic weights, inputs and test signals for the Liu'20 upstream-parity fixtures.

``tests/data/liu20/`` holds only *outputs* of the upstream code (MinglangQiao/visual_audio_saliency, run
outside this project by ``tests/make_liu20_fixtures.py``); the weights and inputs that produced them are
rebuilt here from seeds, bit for bit, so a test can feed the same numbers to our re-implementation.
How the fixtures were made: ``tests/data/liu20/README.md``.

* Weights: :func:`stanet_reference.make_upstream_state_dict` on the upstream key list
  (``tests/data/liu20/keys_liu20.json``, a copy of the project's key list for Liu'20), seed
  :data:`WEIGHT_SEED` (He-scaled normals, small biases; no BatchNorm in this network).
* Network inputs (:func:`make_inputs`): batch 12, frames 128² (:data:`SIDE`). Frames and face maps are N(0, 1) and the
  log-mel images U[0, 4), all rounded to 1/32 (exact in float32). They are O(1) rather than the real
  0–255 ranges so that, with He-scaled random weights, the ConvLSTM gates and the fusion stay out of
  saturation and every branch changes the output.
* Audio signal (:func:`make_signal`): a seeded chirp + tone bursts + noise, written as 16-bit PCM.
"""

from __future__ import annotations

import json
import math
import sys
import wave
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stanet_reference import _normal, _uniform, make_upstream_state_dict  # noqa: E402

DATA_DIR = Path(__file__).resolve().parent / "data" / "liu20"

WEIGHT_SEED = 0
INPUT_SEED = 1
SIGNAL_SEED = 2
GMM_SEED = 3

#: Upstream's fixed batch and the shapes of the four inputs (upstream argument names). Frames are 128²
#: rather than 256² to keep the test fast (the network is fully convolutional: every map is half as wide;
#: the full-size shapes are checked on the meta device).
BATCH = 12
SIDE = 128
INPUT_SHAPES = {"x1": (BATCH, 3, SIDE, SIDE), "x2": (BATCH, 3, SIDE, SIDE), "x3": (BATCH, 1, 16, SIDE // 4, SIDE // 4),
                "x4": (BATCH, 1, SIDE // 8, SIDE // 8)}
STEP = 1.0 / 32.0

#: Audio fixture: signal length (s), the video it stands for (frames, fps) and the batches run upstream.
SIGNAL_SECONDS = 2.5
VIDEO_FRAMES = 58
VIDEO_FPS = 24
FRAME_SKIP = 5
AUDIO_BATCHES = (0, 1, 2, 3)
#: Frames whose 64×64 audio images are stored (both ends, where the window is moved, and the middle).
IMAGE_FRAMES = (0, 1, 2, 3, 28, 29, 54, 55, 56, 57)


def load_keys() -> list[tuple[str, tuple[int, ...]]]:
    """``(key, shape)`` of the upstream checkpoint, in state_dict order."""
    with open(DATA_DIR / "keys_liu20.json", encoding="utf-8") as f:
        return [(k["key"], tuple(k["shape"])) for k in json.load(f)["keys"]]


def make_state_dict(seed: int = WEIGHT_SEED) -> dict[str, torch.Tensor]:
    """The synthetic upstream checkpoint (upstream key names, float32)."""
    return make_upstream_state_dict(load_keys(), seed)


def make_inputs(seed: int = INPUT_SEED) -> dict[str, torch.Tensor]:
    """``x1, x2, x3, x4`` (see the module docstring), drawn in that order from one seeded generator."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed))
    out = {}
    for name, shape in INPUT_SHAPES.items():
        z = 4.0 * _uniform(gen, shape) if name == "x3" else _normal(gen, shape).clamp(-4, 4)
        out[name] = (torch.round(z / STEP) * STEP).to(torch.float32).contiguous()
    return out


def make_signal(rate: int, seconds: float = SIGNAL_SECONDS, seed: int = SIGNAL_SEED) -> np.ndarray:
    """int16 mono samples: a 150→5000 Hz exponential chirp, three 880 Hz bursts and white noise.

    The same seed gives the same waveform at any ``rate`` (the noise is drawn at 8 kHz and linearly
    interpolated), so a 44.1 kHz and a 22.05 kHz version differ only by the sampling.
    """
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    f0, f1 = 150.0, 5000.0
    k = math.log(f1 / f0) / seconds
    y = 0.25 * np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k)
    for start in (0.3, 1.1, 1.9):
        env = np.exp(-0.5 * ((t - start - 0.1) / 0.05) ** 2)
        y += 0.3 * env * np.sin(2 * np.pi * 880.0 * t)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed))
    m = int(seconds * 8000) + 2
    noise = (_uniform(gen, (m,)).numpy() - 0.5) * 0.1
    y += np.interp(t, np.arange(m) / 8000.0, noise)
    return np.round(np.clip(y, -1, 1) * 32767).astype(np.int16)


def write_wav(path, samples: np.ndarray, rate: int) -> Path:
    """16-bit PCM mono WAV."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return Path(path)


def make_gmm_maps(seed: int = GMM_SEED) -> np.ndarray:
    """12 uint8 32×32 maps as upstream reads them from JPEG: random blobs, one all-zero, one constant."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed))
    u = _uniform(gen, (BATCH, 3)).numpy()
    yy, xx = np.mgrid[0:32, 0:32]
    maps = np.exp(-(((xx[None] - 32 * u[:, 0, None, None]) ** 2 + (yy[None] - 32 * u[:, 1, None, None]) ** 2)
                    / (2 * (2 + 6 * u[:, 2, None, None]) ** 2)))
    maps = np.round(maps * 200 + 20).astype(np.uint8)
    maps[4] = 0
    maps[7] = 90
    return maps


# -- end-to-end pipeline fixture -------------------------------------------------------------------------

#: The synthetic video of the pipeline fixture: frames, size, rate, and the network input size used.
PIPE_FRAMES = 29
PIPE_HW = (48, 64)
PIPE_FPS = 24
PIPE_INPUT = 64
PIPE_SEED = 4
#: Scale of the first layer of each branch in :func:`make_pipeline_state_dict`.
PIPE_INPUT_SCALE = 1.0 / 64.0


def make_pipeline_state_dict(seed: int = WEIGHT_SEED) -> dict[str, torch.Tensor]:
    """:func:`make_state_dict` with the layers that read raw 0–255 inputs (frames, audio images, face maps)
    scaled by :data:`PIPE_INPUT_SCALE`, so that real-range inputs keep the network out of saturation."""
    sd = make_state_dict(seed)
    for k in ("conv1_1.weight", "flow_conv1.0.weight", "conv1_3d.weight", "conv_normal_face1.weight",
              "conv_normal_face2.weight"):
        sd[k] = sd[k] * PIPE_INPUT_SCALE
    return sd


def make_pipeline_frames(seed: int = PIPE_SEED) -> list[np.ndarray]:
    """``PIPE_FRAMES`` uint8 RGB frames ``[48, 64, 3]``: smooth random patterns drifting over time."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed))
    base = _uniform(gen, (PIPE_FRAMES + 8, 6, 8, 3)).numpy()
    import cv2

    out = []
    for i in range(PIPE_FRAMES):
        small = (base[i] + base[i + 8]) / 2
        big = cv2.resize(small, (PIPE_HW[1], PIPE_HW[0]), interpolation=cv2.INTER_CUBIC)
        out.append(np.clip(np.round(big * 255), 0, 255).astype(np.uint8))
    return out


def make_pipeline_gmm(seed: int = PIPE_SEED + 1) -> np.ndarray:
    """uint8 ``[PIPE_FRAMES, PIPE_INPUT / 8, PIPE_INPUT / 8]`` face maps (one blob per frame), as upstream
    reads them."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed))
    u = _uniform(gen, (PIPE_FRAMES, 3)).numpy()
    s = PIPE_INPUT // 8
    yy, xx = np.mgrid[0:s, 0:s]
    maps = np.exp(-(((xx[None] - s * u[:, 0, None, None]) ** 2 + (yy[None] - s * u[:, 1, None, None]) ** 2)
                    / (2 * (1 + 3 * u[:, 2, None, None]) ** 2)))
    return np.round(maps * 230 + 5).astype(np.uint8)


def write_pipeline_video(path) -> Path:
    """Lossless video of :func:`make_pipeline_frames` (FFV1, BGR) with the 22,050 Hz :func:`make_signal`
    as PCM audio, so that OpenCV, PyAV and librosa/soundfile read exactly the same numbers."""
    import av

    out = av.open(str(path), "w")
    vs = out.add_stream("ffv1", rate=PIPE_FPS)
    vs.width, vs.height, vs.pix_fmt = PIPE_HW[1], PIPE_HW[0], "bgr0"
    aus = out.add_stream("pcm_s16le", rate=22050)
    aus.layout = "mono"
    for f in make_pipeline_frames():
        for pkt in vs.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
            out.mux(pkt)
    for pkt in vs.encode(None):
        out.mux(pkt)
    sig = make_signal(22050, seconds=PIPE_FRAMES / PIPE_FPS)
    af = av.AudioFrame.from_ndarray(sig[None], format="s16", layout="mono")
    af.sample_rate, af.pts = 22050, 0
    for pkt in aus.encode(af):
        out.mux(pkt)
    for pkt in aus.encode(None):
        out.mux(pkt)
    out.close()
    return Path(path)
