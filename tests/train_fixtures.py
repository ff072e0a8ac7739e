"""A tiny synthetic prepared root (docs/weak_pipeline.md layout) for the training tests."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
from PIL import Image

from avsal.io.audio import write_features_h5

COLOURS = [(230, 40, 40), (40, 200, 60), (50, 80, 230)]


def make_prepared_root(root, n_clips: int = 6, seconds: int = 4, size: int = 64, n_classes: int = 3, seed: int = 0):
    """Clips of class k show a disc of colour k at a random place on a textured background."""
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    rows = []
    for c in range(n_clips):
        k = c % n_classes
        clip = f"clip{c:02d}"
        os.makedirs(os.path.join(root, "frames", clip), exist_ok=True)
        os.makedirs(os.path.join(root, "audio", clip), exist_ok=True)
        cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
        for s in range(seconds):
            img = rng.integers(60, 120, (size, size, 3)).astype(np.uint8)
            yy, xx = np.mgrid[0:size, 0:size]
            m = (yy - cy - s) ** 2 + (xx - cx) ** 2 < (size // 8) ** 2
            img[m] = COLOURS[k]
            Image.fromarray(img).save(os.path.join(root, "frames", clip, f"{s:02d}.jpg"), quality=95)
            feat = rng.normal(0, 1, (81, 199)).astype(np.float32)
            feat[10 + 20 * k: 20 + 20 * k] += 2.0  # a class-specific "sound"
            write_features_h5(os.path.join(root, "audio", clip, f"{s:02d}.h5"), feat)
            rows.append({"clip": clip, "second": s, "frame": f"frames/{clip}/{s:02d}.jpg",
                         "audio": f"audio/{clip}/{s:02d}.h5", "class_id": k, "class_name": f"class{k}",
                         "split": "train"})
    with open(os.path.join(root, "manifest.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(root, "classes.json"), "w") as f:
        json.dump([f"class{k}" for k in range(n_classes)], f)
    return root


def make_vggsound_weights(path, favour: str | None = None, seed: int = 0):
    """A tiny random ``vggsound_netvlad.pth.tar`` look-alike (``model_state_dict`` with ``audnet.*`` keys and the
    309-way ``audnet.fc_``). ``favour``: a VGGSound class name that every second is then classified as."""
    import torch

    from avsal.data.relevance import vggsound_classes
    from avsal.models.backbones import AudioResNet

    torch.manual_seed(seed)
    net = AudioResNet(tiny=True, num_classes=309)
    sd = {f"audnet.{k}": v for k, v in net.state_dict().items()}
    if favour is not None:
        sd["audnet.fc_.weight"] = torch.zeros_like(sd["audnet.fc_.weight"])
        bias = torch.zeros(309)
        bias[vggsound_classes().index(favour)] = 10.0
        sd["audnet.fc_.bias"] = bias
    torch.save({"epoch": 1, "model_state_dict": sd}, path)
    return str(path)
