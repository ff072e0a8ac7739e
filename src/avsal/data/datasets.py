"""Training datasets over a *prepared root* (``docs/weak_pipeline.md``) and a pseudo-GT folder.

* :class:`FrameDataset` — one frame (+ its audio features) per item, for S and SA;
* :class:`TripletDataset` — frames (t, t−1, t+1) of a clip (+ audio), for ST;
* :class:`STADataset` — triplets with their pseudo-GT maps, only where all three pseudo-GTs exist
  (upstream ``STANet_train&test/utils/LoadData.py``).

Items are deterministic functions of ``(seed, epoch, index)`` (:meth:`set_epoch`), whatever the number of
DataLoader workers or processes. ST triplets share one random crop/jitter unless ``independent_crops=True``
(upstream ST transforms each frame separately); STA triplets draw one jitter per frame, as upstream
(``shared_jitter=True`` for one draw).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from avsal.data import layout
from avsal.data.transforms import TrainTransform, resize_square
from avsal.errors import InputError
from avsal.io.image import read_gray, read_rgb
from avsal.io.audio import read_features_h5


@dataclass(frozen=True)
class Sample:
    """One manifest row (paths absolute)."""

    clip: str
    second: int
    frame: str
    audio: str
    class_id: int
    split: str


def read_manifest(root: str | os.PathLike, split: str | None = None) -> list[Sample]:
    """Rows of ``ROOT/manifest.csv`` (optionally of one split) with absolute paths, sorted by clip then second.

    The file is read and checked by :func:`avsal.data.layout.read_manifest`.

    Raises:
        InputError: no manifest, a missing column or a malformed row (file, line and column named).
    """
    root = os.fspath(root)
    out = [Sample(r.clip, r.second, os.path.join(root, r.frame), os.path.join(root, r.audio), r.class_id, r.split)
           for r in layout.read_manifest(root) if split is None or r.split == split]
    return sorted(out, key=lambda s: (s.clip, s.second))


def read_classes(root: str | os.PathLike) -> list[str]:
    """``ROOT/classes.json`` (class names by id)."""
    path = os.path.join(os.fspath(root), "classes.json")
    if not os.path.isfile(path):
        raise InputError(path, "no classes.json in the prepared root")
    with open(path) as f:
        return list(json.load(f))


def one_hot(class_id: int, num_classes: int) -> torch.Tensor:
    """float32 ``[num_classes]`` with 1 at ``class_id`` (upstream's multilabel targets)."""
    v = torch.zeros(num_classes)
    v[class_id] = 1.0
    return v


def _neighbours(samples: list[Sample]) -> list[tuple[int, int, int]]:
    """Per sample: indices of (t, t−1, t+1) within its clip; a missing neighbour is t itself."""
    pos = {(s.clip, s.second): i for i, s in enumerate(samples)}
    out = []
    for i, s in enumerate(samples):
        out.append((i, pos.get((s.clip, s.second - 1), i), pos.get((s.clip, s.second + 1), i)))
    return out


#: What :class:`TripletDataset` does with a frame that lacks a neighbour (a clip's first and last second).
EDGE_MODES = ("skip", "repeat")


class _Base(Dataset):
    def __init__(self, samples: list[Sample], transform: TrainTransform, num_classes: int, seed: int = 0):
        if not samples:
            raise ValueError("empty dataset (no manifest rows for this split?)")
        self.samples = samples
        self.transform = transform
        self.num_classes = num_classes
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream of ``epoch`` (call before each epoch, as ``DistributedSampler``)."""
        self.epoch = epoch

    def rng(self, index: int) -> np.random.Generator:
        """The augmentation generator of item ``index`` in the current epoch (a function of seed, epoch, index)."""
        return np.random.default_rng([self.seed, self.epoch, index])

    def __len__(self) -> int:
        return len(self.samples)


class FrameDataset(_Base):
    """Single frames: ``(frame [3, S, S], audio [81, 199], label one-hot [K], index)``."""

    def __getitem__(self, i):
        s = self.samples[i]
        x = self.transform(read_rgb(s.frame), self.rng(i))
        a = torch.from_numpy(read_features_h5(s.audio).reshape(81, 199))
        return x, a, one_hot(s.class_id, self.num_classes), i


class TripletDataset(_Base):
    """Frames (t, t−1, t+1) of the same clip: ``(frames [3, 3, S, S], audio [3, 81, 199], label [K], index)``;
    ``index`` is the position of frame t in ``samples``.

    Args:
        independent_crops: draw a separate crop/jitter per frame (upstream ST) instead of one shared.
        edges: ``"skip"`` (default, upstream ``ST/utils/LoadData.py``, which takes frames 1 … N−2 of a
            clip): frames without both neighbours (a clip's first and last second, or around a gap) are not
            items; ``"repeat"``: every frame is an item and a missing neighbour is replaced by frame t.

    Raises:
        ValueError: unknown ``edges``, or no frame has both neighbours.
    """

    def __init__(self, samples, transform, num_classes, seed=0, independent_crops: bool = False,
                 edges: str = "skip"):
        super().__init__(samples, transform, num_classes, seed)
        if edges not in EDGE_MODES:
            raise ValueError(f"edges must be one of {EDGE_MODES}, got {edges!r}")
        triplets = _neighbours(samples)
        if edges == "skip":
            triplets = [t for t in triplets if t[0] != t[1] and t[0] != t[2]]
            if not triplets:
                raise ValueError("no frame has both neighbours (clips shorter than 3 seconds?); use edges='repeat'")
        self.neighbours = triplets
        self.independent_crops = independent_crops
        self.edges = edges

    def __len__(self) -> int:
        return len(self.neighbours)

    def __getitem__(self, i):
        rng = self.rng(i)
        idx = self.neighbours[i]
        shared = self.transform.params(rng)
        frames = [self.transform.apply(read_rgb(self.samples[j].frame),
                                       self.transform.params(rng) if self.independent_crops else shared)
                  for j in idx]
        audio = [torch.from_numpy(read_features_h5(self.samples[j].audio).reshape(81, 199)) for j in idx]
        return torch.stack(frames), torch.stack(audio), one_hot(self.samples[idx[0]].class_id, self.num_classes), idx[0]


def read_pseudo_gt(folder: str | os.PathLike) -> dict[tuple[str, int], str]:
    """``PGT/pseudo_gt.csv`` → {(clip, second): absolute PNG path}.

    The file is read and checked by :func:`avsal.data.layout.read_pseudo_gt_csv`.

    Raises:
        InputError: no ``pseudo_gt.csv``, a missing column or a malformed row (file, line and column named).
    """
    folder = os.fspath(folder)
    return {(r.clip, r.second): os.path.join(folder, r.path) for r in layout.read_pseudo_gt_csv(folder)}


class STADataset(Dataset):
    """STA training triplets with pseudo-GT: only frames t whose t−1, t and t+1 pseudo-GTs all exist.

    Items: ``(frames [3, 3, S, S], audio [3, 81, 199], gt [3, 1, S, S] in [0, 1], index)``, both in the order
    (t, t−1, t+1) — the model's input order, paired with (gt_t, gt_{t−1}, gt_{t+1}) as upstream. Frames are
    resized to ``size²`` with colour jitter (no crop, as upstream STA); pseudo-GTs resized to ``size²``.

    Args:
        samples: manifest rows; pseudo_gt: ``{(clip, second): png}`` (:func:`read_pseudo_gt`).
        size: square side (px).
        jitter: a :class:`~avsal.data.transforms.ColorJitter` or ``None``.
        seed: augmentation seed.
        interpolation: frame and pseudo-GT resize, ``"pil"`` (default, upstream) or ``"cv2"``
            (:func:`~avsal.data.transforms.resize_square`).
        shared_jitter: ``False`` (default, upstream ``STANet_train&test/utils/LoadData.py``, which calls the
            transform once per frame): each frame of the triplet draws its own jitter; ``True``: one draw
            for all three.
    """

    def __init__(self, samples: list[Sample], pseudo_gt: dict, size: int = 356, jitter=None, seed: int = 0,
                 shared_jitter: bool = False, interpolation: str = "pil"):
        self.size, self.jitter, self.seed, self.epoch = size, jitter, seed, 0
        self.interpolation = interpolation
        self.shared_jitter = shared_jitter
        pos = {(s.clip, s.second): s for s in samples}
        self.items = []
        for s in samples:
            keys = [(s.clip, s.second), (s.clip, s.second - 1), (s.clip, s.second + 1)]
            if all(k in pseudo_gt and k in pos for k in keys):
                self.items.append(([pos[k] for k in keys], [pseudo_gt[k] for k in keys]))
        if not self.items:
            raise ValueError("no frame has pseudo-GTs for itself and both neighbours")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        from avsal.data.transforms import to_tensor

        rng = np.random.default_rng([self.seed, self.epoch, i])
        jseeds = [int(v) for v in rng.integers(0, 2**63 - 1, 3)]
        if self.shared_jitter:
            jseeds = [jseeds[0]] * 3
        samples, gts = self.items[i]
        frames = []
        for s, jseed in zip(samples, jseeds):
            x = resize_square(read_rgb(s.frame), self.size, self.interpolation).astype(np.float32) / 255.0
            if self.jitter is not None:
                x = self.jitter(x, np.random.default_rng(jseed))
            frames.append(to_tensor(x))
        audio = [torch.from_numpy(read_features_h5(s.audio).reshape(81, 199)) for s in samples]
        # upstream: Resize(356) on the 8-bit pseudo-GT image, then ToTensor (÷255)
        gt = [torch.from_numpy(resize_square(read_gray(g), self.size, self.interpolation).astype(np.float32)
                               / 255.0)[None] for g in gts]
        return torch.stack(frames), torch.stack(audio), torch.stack(gt), i
