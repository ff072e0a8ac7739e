"""Training ViNet / AViNet (upstream ``train.py``, ``utils.py`` ``get_loss``, ``loss.py``, ``dataloader.py``).

Recipe (``docs/vinet.md`` §Training): Adam, lr 1e-4, batch 8, 40 epochs; the loss is the sum of the enabled
terms, each a batch mean — KL (default), −CC, −SIM, L1. One item per video per epoch: a random window of 32
consecutive frames, the target being the density map of the **last** frame, resized to 384×224 (cv2 bilinear)
and divided by 255 (upstream ``DHF1KDataset`` in ``train`` mode). The window start is drawn from
``(seed, epoch, index)`` so that runs resume exactly.

Layouts:

* ``dhf1k`` (ViNet; DHF1K, Hollywood-2, UCF-Sports): ``ROOT/<video>/images/NNNN.png|jpg`` and
  ``ROOT/<video>/maps/NNNN.png|jpg`` (same frames 1..N; :func:`avsal.evaluate.readers.read_dhf1k_root`);
* ``stavis`` (AViNet; the six AV sets): ``ROOT/video_frames/<DB>/<video>/img_%05d.jpg``,
  ``ROOT/annotations/<DB>/<video>/maps/eyeMap_%05d.jpg``, ``ROOT/video_audio/<DB>/<video>/<video>.wav`` and the
  frame rates of ``ROOT/fold_lists/<DB>_list_<train|test>_<split>_fps.txt`` (lines ``name n_frames fps``).
"""

from __future__ import annotations

import glob
import os
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
import torch

from avsal.errors import InputError
from avsal.models.vinet.networks import CLIP_LENGTH, INPUT_HW

#: Upstream ``kldiv`` epsilon (MATLAB ``eps``).
KL_EPS = 2.2204e-16
_IMAGE_EXT = (".png", ".jpg", ".jpeg")


def kldiv(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Upstream ``kldiv``: maps ``[B, H, W]`` sum-normalised, ``mean_b Σ gt·log(eps + gt / (p + eps))``."""
    b = pred.size(0)
    p = pred.reshape(b, -1)
    g = gt.reshape(b, -1)
    p = p / p.sum(1, keepdim=True)
    g = g / g.sum(1, keepdim=True)
    return (g * torch.log(KL_EPS + g / (p + KL_EPS))).sum(1).mean()


def cc(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Upstream ``cc``: Pearson correlation per map (unbiased std, as ``torch.std``), batch mean."""
    b = pred.size(0)
    p = pred.reshape(b, -1)
    g = gt.reshape(b, -1)
    p = (p - p.mean(1, keepdim=True)) / p.std(1, keepdim=True)
    g = (g - g.mean(1, keepdim=True)) / g.std(1, keepdim=True)
    return ((p * g).sum(1) / torch.sqrt((p * p).sum(1) * (g * g).sum(1))).mean()


def similarity(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Upstream ``similarity``: min-max normalise, sum-normalise, ``Σ min(p, g)``, batch mean."""
    b = pred.size(0)

    def norm(x):
        x = x.reshape(b, -1)
        lo, hi = x.min(1, keepdim=True)[0], x.max(1, keepdim=True)[0]
        x = (x - lo) / (hi - lo)
        return x / x.sum(1, keepdim=True)
    return torch.minimum(norm(pred), norm(gt)).sum(1).mean()


@dataclass(frozen=True)
class LossConfig:
    """Upstream's loss switches and coefficients (``--kldiv``, ``--cc``, ``--sim``, ``--l1`` and ``*_coeff``).

    Upstream's ``type=bool`` flags turn any non-empty string into True; here they are real booleans. Upstream's
    L1 term references an undefined ``criterion`` (a NameError); here it is ``mean |p − g|``.
    """

    kldiv: bool = True
    cc: bool = False
    sim: bool = False
    l1: bool = False
    kldiv_coeff: float = 1.0
    cc_coeff: float = -1.0
    sim_coeff: float = -1.0
    l1_coeff: float = 1.0


def saliency_loss(pred: torch.Tensor, gt: torch.Tensor, cfg: LossConfig = LossConfig()
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Sum of the enabled terms for maps ``[B, H, W]`` (pred in (0, 1), gt ≥ 0); also each term, detached.

    Raises:
        ValueError: no term enabled, or shapes differ.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(gt.shape)} differ")
    terms = {}
    if cfg.kldiv:
        terms["kldiv"] = cfg.kldiv_coeff * kldiv(pred, gt)
    if cfg.cc:
        terms["cc"] = cfg.cc_coeff * cc(pred, gt)
    if cfg.sim:
        terms["sim"] = cfg.sim_coeff * similarity(pred, gt)
    if cfg.l1:
        terms["l1"] = cfg.l1_coeff * (pred - gt).abs().mean()
    if not terms:
        raise ValueError("no loss term enabled (kldiv, cc, sim, l1)")
    return sum(terms.values()), {k: v.detach() for k, v in terms.items()}


@dataclass
class VideoItem:
    """One training video: frame files, density-map files (paired by position), optional audio and fps."""

    name: str
    frames: list[str]
    maps: list[str]
    audio: str | None = None
    fps: float = 30.0


def _images(folder: str) -> list[str]:
    return sorted(p for p in glob.glob(os.path.join(folder, "*")) if p.lower().endswith(_IMAGE_EXT))


def read_dhf1k_layout(root: str) -> list[VideoItem]:
    """Videos of a DHF1K-layout folder with at least 32 frames (shorter ones cannot form a clip).

    The folder is read by :func:`avsal.evaluate.readers.read_dhf1k_root` (the reader ``avsal evaluate
    --dataset-layout dhf1k`` uses): ``<video>/images/NNNN.*`` and ``<video>/maps/NNNN.*`` numbered 1..N; ``root``
    may itself be one video folder.

    Raises:
        InputError: no such folder, no video with ``images/`` and ``maps/``, or a video whose ``images`` and
            ``maps`` counts or numbering differ.
    """
    from avsal.evaluate.readers import read_dhf1k_root

    items = [VideoItem(v.name, [str(p) for p in v.images], [str(p) for p in v.maps])
             for v in read_dhf1k_root(root, ("images", "maps"))]
    items = [it for it in items if len(it.frames) >= CLIP_LENGTH]
    if not items:
        raise InputError(root, f"no <video>/images + <video>/maps folder with at least {CLIP_LENGTH} frames")
    return items


def read_stavis_layout(root: str, datasets: tuple[str, ...], split: int = 1, mode: str = "train"
                       ) -> list[VideoItem]:
    """Videos of STAViS-layout AV sets (module docstring) listed in their fold lists.

    Raises:
        InputError: a missing fold list, frame folder or wav file.
    """
    items = []
    for db in datasets:
        lst = os.path.join(root, "fold_lists", f"{db}_list_{mode}_{split}_fps.txt")
        if not os.path.isfile(lst):
            raise InputError(lst, "fold list not found")
        with open(lst) as f:
            rows = [line.split() for line in f if line.strip()]
        for row in rows:
            name, fps = row[0], float(row[2])
            frames = _images(os.path.join(root, "video_frames", db, name))
            maps = _images(os.path.join(root, "annotations", db, name, "maps"))
            wav = os.path.join(root, "video_audio", db, name, f"{name}.wav")
            if not os.path.isfile(wav):
                raise InputError(wav, "audio file not found")
            n = min(len(frames), len(maps))
            if n >= CLIP_LENGTH:
                items.append(VideoItem(f"{db}/{name}", frames[:n], maps[:n], wav, fps))
    if not items:
        raise InputError(root, f"no video with at least {CLIP_LENGTH} frames in {', '.join(datasets)}")
    return items


def read_map(path: str, hw: tuple[int, int] = INPUT_HW) -> np.ndarray:
    """A density map as float32 ``[h, w]`` (default 224×384): grey, cv2 bilinear resize, / 255 when its max
    exceeds 1."""
    m = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise InputError(path, "not a readable image")
    m = cv2.resize(m.astype(np.float64), (hw[1], hw[0]))
    if m.max() > 1.0:
        m = m / 255.0
    return m.astype(np.float32)


class ClipDataset(torch.utils.data.Dataset):
    """One random 32-frame window per video per epoch: ``(clip [3,32,224,384], gt [224,384], audio, index)``.

    ``audio`` is AViNet's ``[1, 70560, 1]`` buffer (:func:`avsal.models.vinet.audio.clip_audio`) when the item
    has a soundtrack and ``with_audio`` is set, else an empty tensor.
    """

    def __init__(self, items: list[VideoItem], with_audio: bool = False, seed: int = 0,
                 input_hw: tuple[int, int] = INPUT_HW):
        self.items, self.with_audio, self.seed, self.epoch = items, with_audio, seed, 0
        self.input_hw = tuple(input_hw)
        self._tracks: dict[str, object] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def start(self, index: int) -> int:
        """The window start for ``index`` in the current epoch."""
        n = len(self.items[index].frames)
        return int(np.random.default_rng([self.seed, self.epoch, index]).integers(0, n - CLIP_LENGTH + 1))

    def _track(self, path: str):
        if path not in self._tracks:
            from avsal.io.audio import load_audio

            self._tracks[path] = load_audio(path, sample_rate=None, mix="mean")
        return self._tracks[path]

    def __getitem__(self, index: int):
        from avsal.io.image import read_rgb
        from avsal.models.vinet.predictor import preprocess

        item = self.items[index]
        s = self.start(index)
        clip = torch.stack([preprocess(read_rgb(p), self.input_hw) for p in item.frames[s:s + CLIP_LENGTH]], dim=1)
        gt = torch.from_numpy(read_map(item.maps[s + CLIP_LENGTH - 1], self.input_hw))
        audio = torch.zeros(0)
        if self.with_audio and item.audio is not None:
            from avsal.models.vinet.audio import clip_audio

            times = np.arange(s, s + CLIP_LENGTH) / item.fps
            audio = torch.from_numpy(clip_audio(self._track(item.audio), times, 1.0 / item.fps)).view(1, -1, 1)
        return clip, gt, audio, index


@dataclass
class ViNetTask:
    """``avsal train vinet|avinet``: the :class:`avsal.train.engine.Task` of ViNet / AViNet.

    Attributes:
        data: the dataset root.
        model: ``"vinet"`` or ``"avinet"``.
        layout: ``"dhf1k"`` or ``"stavis"`` (module docstring).
        datasets: the AV sets of the ``stavis`` layout.
        split: fold of the ``stavis`` layout.
        losses: :class:`LossConfig` fields (which terms, their coefficients).
        network: :class:`avsal.models.vinet.networks.ViNetConfig` fields (``tiny``, ``use_transformer``, …).
        tiny: tiny networks (tests).
        input_hw: network input size (224×384 as upstream; ViNet also runs at other multiples of 32, e.g.
            in tests; AViNet only at 224×384).
        seed: window-sampling seed.
    """

    data: str
    model: str = "vinet"
    layout: str = "dhf1k"
    datasets: tuple[str, ...] = ("DIEM", "Coutrot_db1", "Coutrot_db2", "AVAD", "ETMD_av", "SumMe")
    split: int = 1
    losses: dict = field(default_factory=dict)
    network: dict = field(default_factory=dict)
    tiny: bool = False
    input_hw: tuple[int, int] = INPUT_HW
    seed: int = 0

    def __post_init__(self):
        self.input_hw = tuple(self.input_hw)
        if self.model == "avinet" and self.input_hw != INPUT_HW:
            raise ValueError(f"avinet only runs at {INPUT_HW[0]}×{INPUT_HW[1]}")
        if self.model not in ("vinet", "avinet"):
            raise ValueError(f"model must be 'vinet' or 'avinet', got {self.model!r}")
        if self.layout not in ("dhf1k", "stavis"):
            raise ValueError(f"layout must be 'dhf1k' or 'stavis', got {self.layout!r}")
        self.loss_config = LossConfig(**self.losses)

    @property
    def name(self) -> str:
        return self.model

    def config_dict(self) -> dict:
        return asdict(self)

    def build_model(self) -> torch.nn.Module:
        from avsal.models.vinet.networks import AViNet, ViNet

        if self.model == "vinet":
            return ViNet(tiny=self.tiny)
        return AViNet(tiny=self.tiny, **self.network)

    def dataset(self):
        if self.layout == "dhf1k":
            items = read_dhf1k_layout(self.data)
        else:
            items = read_stavis_layout(self.data, tuple(self.datasets), self.split, "train")
        return ClipDataset(items, with_audio=self.model == "avinet", seed=self.seed, input_hw=self.input_hw)

    def optimizer(self, model: torch.nn.Module, cfg) -> torch.optim.Optimizer:
        """Upstream's optimiser: Adam over every trainable parameter at ``cfg.lr`` (weight decay ``cfg.weight_decay``,
        0 by default)."""
        params = [p for p in model.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def loss(self, model, batch):
        clip, gt, audio, _ = batch
        if self.model == "avinet":
            if audio.numel() == 0:
                audio = torch.zeros(clip.shape[0], 1, 70560, 1, device=clip.device)
            pred = model(clip, audio)
        else:
            pred = model(clip)
        return saliency_loss(pred.float(), gt, self.loss_config)


def vinet_train_config(**overrides):
    """Upstream's optimisation settings: lr 1e-4, no weight decay, batch 8, 40 epochs, no schedule (the Adam
    optimiser itself comes from :meth:`ViNetTask.optimizer`)."""
    from avsal.train.engine import TrainConfig

    return TrainConfig(**{"lr": 1e-4, "weight_decay": 0.0, "batch_size": 8, "epochs": 40, "milestones": (),
                          **overrides})
