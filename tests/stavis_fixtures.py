"""A tiny synthetic dataset in the STAViS release layout (for the STAViS training tests)."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image
from scipy.io import savemat, wavfile


def make_stavis_root(root, n_videos: int = 3, n_frames: int = 100, fps: float = 25.0, h: int = 40, w: int = 48,
                     rate: int = 16000, seed: int = 0) -> str:
    """``root/{video_frames,video_audio,annotations}/AVAD/<vid>`` and ``fold_lists/AVAD_list_train_1_fps.txt``.

    Each video shows a bright disc moving on noise; the density map is a Gaussian on the disc, the fixation
    map its centre pixel; the soundtrack is a tone whose loudness follows the disc's x position.
    """
    rng = np.random.default_rng(seed)
    lines = []
    yy, xx = np.mgrid[0:h, 0:w]
    for v in range(n_videos):
        vid = f"vid{v:02d}"
        fdir = os.path.join(root, "video_frames", "AVAD", vid)
        adir = os.path.join(root, "annotations", "AVAD", vid)
        wdir = os.path.join(root, "video_audio", "AVAD", vid)
        for d in (fdir, os.path.join(adir, "maps"), wdir):
            os.makedirs(d, exist_ok=True)
        cy = int(rng.integers(10, h - 10))
        xs = []
        for k in range(1, n_frames + 1):
            cx = int(8 + (w - 16) * (0.5 + 0.5 * np.sin(2 * np.pi * (k / n_frames + v / 3))))
            xs.append(cx)
            img = rng.integers(40, 90, (h, w, 3)).astype(np.uint8)
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < 25] = (250, 240, 60)
            Image.fromarray(img).save(os.path.join(fdir, f"img_{k:05d}.jpg"), quality=95)
            dens = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 4.0 ** 2))
            Image.fromarray((255 * dens / dens.max()).astype(np.uint8)).save(
                os.path.join(adir, "maps", f"eyeMap_{k:05d}.jpg"), quality=95)
            fix = np.zeros((h, w), np.uint8)
            fix[cy, cx] = 1
            savemat(os.path.join(adir, f"fixMap_{k:05d}.mat"), {"eyeMap": fix})
        t = np.arange(int(rate * n_frames / fps)) / rate
        loud = np.interp(t * fps, np.arange(n_frames), np.asarray(xs, float) / w)
        wav = (0.5 * loud * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
        wavfile.write(os.path.join(wdir, f"{vid}.wav"), rate, wav)
        lines.append(f"{vid} {n_frames} {fps:g}")
    os.makedirs(os.path.join(root, "fold_lists"), exist_ok=True)
    with open(os.path.join(root, "fold_lists", "AVAD_list_train_1_fps.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return str(root)
