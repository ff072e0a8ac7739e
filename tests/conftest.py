"""Shared fixtures: small synthetic clips made on the fly, and the optional ../shared/data folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from avsal.synth import make_demo_clip, write_clip

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """``$AVSAL_SHARED_DATA`` or ``../shared/data`` next to the repository, if present."""
    env = os.environ.get("AVSAL_SHARED_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if cand.is_dir():
            return cand
    return None


SHARED = shared_data_dir()
#: The project specs folder (``../shared/specs``), if present: the metric test-input script lives there.
SPECS = SHARED.parent / "specs" if SHARED is not None and (SHARED.parent / "specs").is_dir() else None


def shared_videos() -> list[Path]:
    if SHARED is None:
        return []
    return sorted(p for p in (SHARED / "videos").glob("*/*") if p.is_file())


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if SHARED is None:
        pytest.skip("../shared/data is not present (set AVSAL_SHARED_DATA to use it)")
    return SHARED


def gradient_frame(i: int, h: int = 96, w: int = 128) -> np.ndarray:
    """A moving square on a gradient: uint8 [h, w, 3]."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.linspace(0, 200, w, dtype=np.uint8)[None, :]
    img[..., 1] = np.linspace(0, 120, h, dtype=np.uint8)[:, None]
    x = (5 + 3 * i) % (w - 20)
    img[30:50, x:x + 20] = (250, 250, 40)
    return img


def tone(seconds: float, rate: int, channels: int = 1, freq: float = 440.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(x[None], channels, axis=0)


def write_vfr_clip(path, pts_ms: list[int]) -> Path:
    """An H.264 clip whose frames sit at the given (irregular) presentation times in milliseconds."""
    from fractions import Fraction

    import av

    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=30)
    vs.width, vs.height, vs.pix_fmt = 128, 96, "yuv420p"
    vs.codec_context.time_base = Fraction(1, 1000)
    for i, t in enumerate(pts_ms):
        fr = av.VideoFrame.from_ndarray(gradient_frame(i), format="rgb24")
        fr.pts, fr.time_base = t, Fraction(1, 1000)
        for pkt in vs.encode(fr):
            out.mux(pkt)
    for pkt in vs.encode(None):
        out.mux(pkt)
    out.close()
    return Path(path)


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def small_clip(clip_dir) -> Path:
    """2 s, 25 fps, 128x96, H.264 + AAC mono 16 kHz."""
    p = clip_dir / "small.mp4"
    write_clip(p, gradient_frame, 50, 25, tone(2.0, 16000), 16000)
    return p


@pytest.fixture(scope="session")
def demo_clip(clip_dir):
    """The demo scene, short and small: (path, DemoScene)."""
    p = clip_dir / "demo.mp4"
    scene = make_demo_clip(p, seconds=4.0, fps=25, size=(144, 256), seed=3)
    return p, scene


@pytest.fixture(scope="session")
def spec_inputs(tmp_path_factory) -> Path:
    """The inputs of the metric spec's §5 table, made by the spec's own script (skipped without it)."""
    import importlib.util
    import sys

    script = SPECS / "make_metric_test_inputs.py" if SPECS is not None else None
    if script is None or not script.is_file():
        pytest.skip("shared specs (make_metric_test_inputs.py) not available")
    spec = importlib.util.spec_from_file_location("make_metric_test_inputs", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path_factory.mktemp("metric_inputs")
    argv = sys.argv
    try:
        sys.argv = ["make_metric_test_inputs.py", str(out)]
        mod.main()
    finally:
        sys.argv = argv
    return out
