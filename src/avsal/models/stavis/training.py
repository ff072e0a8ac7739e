"""Supervised STAViS training (``avsal train stavis``) on the STAViS release layout, through
:func:`avsal.train.engine.fit`. Recipe (upstream ``main.py``, ``train.py``, ``models/sal_losses.py``,
``datasets/saliency_db.py``; ``docs/stavis.md`` §Training):

* data: the train lists (``fold_lists/<DB>_list_train_<split>_fps.txt``; DIEM one list) of the six datasets,
  concatenated; per video, windows of 90 frames every 74 (j = 1, 75, …), in each a random 16-frame crop
  (loop-padded when shorter); the ground truth of frame ``round(median(clip))`` (Python's round: half to
  even, so frame j+7 for odd j and j+8 for even j — ``gt_rounding="upstream"``; ``"half_up"`` takes j+8);
  a random horizontal flip of the clip and both maps;
* loss per sample: ``0.1·BCE + 2·(−CC) + 1·(−NSS)``, each term ``(1 − e/E)·Σ side outputs + final`` (e the
  1-based epoch of E; the AV model has the final output only); BCE with logits against GT/255 summed over
  pixels; CC and NSS on ``sigmoid``; batch loss = mean over samples;
* SGD with momentum 0.9, **dampening 0.9**, weight decay 1e-5, base lr 0.01 in four groups (global =
  conv1/bn1/layer1–3; sal = DSAMs and read-out; sound = SoundNet; fusion = the AV fusion) at
  global lr/10, sal lr/100 (visual) or lr/100 for both (AV), sound lr/10, fusion lr (AV only); inside sal,
  ``side_prep`` weights at lr_sal and the other DSAM and read-out weights at lr_sal/10, biases ×2;
  ×0.1 at epochs 29 and 44 of 60;
* inits: visual from ``resnet-50-kinetics.pth`` (``--backbone-weights``); AV from the visual model
  (``--init``: an upstream ``visual_split<s>_save_60.pth`` or an avsal visual run's ``model.safetensors``) plus
  ``soundnet8.pth`` (``--audio-weights``).

Upstream defects kept as switches: ``last_video_silent`` (the last video of every list gets zero audio,
``saliency_db.py``'s ``range(len − 1)``), ``gt_rounding``. Not reproduced: the validation pass (the engine has
none) and DataParallel's per-GPU BatchNorm batches.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from avsal.errors import InputError
from avsal.models.stavis import preprocess as pp
from avsal.train.engine import TrainConfig

#: Loss weights of (BCE, −CC, −NSS) (upstream ``--sal_weights``).
SAL_WEIGHTS = (0.1, 2.0, 1.0)
#: The six datasets upstream trains on.
DEFAULT_DATASETS = ("DIEM", "Coutrot1", "Coutrot2", "SumMe", "ETMD", "AVAD")
_EPS = float(np.finfo(np.float32).eps)


def stavis_train_config(**overrides) -> TrainConfig:
    """The upstream :class:`TrainConfig` (60 epochs, batch 128, lr 0.01, wd 1e-5, ×0.1 at 29 and 44), with overrides."""
    base = dict(epochs=60, batch_size=128, lr=0.01, momentum=0.9, weight_decay=1e-5, nesterov=False,
                milestones=(29, 44), gamma=0.1)
    return TrainConfig(**{**base, **overrides})


# ----------------------------------------------------------------------------------------------
# losses (upstream models/sal_losses.py, per sample)
# ----------------------------------------------------------------------------------------------

def bce_sum(logits: torch.Tensor, sal: torch.Tensor) -> torch.Tensor:
    """``[B, 1, H, W]`` logits, density ``[B, 1, H, W]`` in 0–255 → ``[B]``: BCE-with-logits vs sal/255, summed."""
    b = logits.shape[0]
    return F.binary_cross_entropy_with_logits(logits.reshape(b, -1), sal.reshape(b, -1) / 255,
                                              reduction="none").sum(1)


def cc(logits: torch.Tensor, sal: torch.Tensor) -> torch.Tensor:
    """Pearson CC of ``sigmoid(logits)`` and the density map, per sample ``[B]`` (eps = float32 eps on the
    map's sum of squares, as upstream)."""
    b = logits.shape[0]
    x = torch.sigmoid(logits.reshape(b, -1))
    y = sal.reshape(b, -1)
    xm, ym = x - x.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
    return (xm * ym).sum(1) / torch.sqrt((xm * xm).sum(1) * ((ym * ym).sum(1) + _EPS))


def nss(logits: torch.Tensor, fix: torch.Tensor) -> torch.Tensor:
    """NSS of ``sigmoid(logits)`` (z-scored with the population std) at the fixations ``fix > 0``, per sample ``[B]``."""
    b = logits.shape[0]
    x = torch.sigmoid(logits.reshape(b, -1))
    y = (fix.reshape(b, -1) > 0).to(x.dtype)
    xm = x - x.mean(1, keepdim=True)
    xn = xm / torch.sqrt((xm * xm).mean(1, keepdim=True))
    return (xn * y).sum(1) / (y.sum(1) + _EPS)


def stavis_loss(outputs: list[torch.Tensor], sal: torch.Tensor, fix: torch.Tensor, epoch: int, epochs: int,
                weights=SAL_WEIGHTS) -> tuple[torch.Tensor, dict]:
    """The per-sample loss ``w_bce·BCE + w_cc·(−CC) + w_nss·(−NSS)`` with the deep-supervision decay, averaged.

    Args:
        outputs: the network's logit maps (side outputs first, the final map last).
        sal: ``[B, 1, H, W]`` density maps in 0–255; fix: ``[B, 1, H, W]`` fixation maps (> 0 = fixated).
        epoch: 1-based epoch; epochs: total epochs (the side outputs weigh ``1 − epoch/epochs``).

    Returns:
        ``(scalar loss, {"bce", "cc", "nss"}: batch means of the final output's terms)``.
    """
    decay = 1.0 - epoch / epochs
    terms = []
    for fn, arg, sign in ((bce_sum, sal, 1.0), (cc, sal, -1.0), (nss, fix, -1.0)):
        per = [sign * fn(o.float(), arg) for o in outputs]
        terms.append(decay * sum(per[:-1]) + per[-1] if len(per) > 1 else per[-1])
    total = sum(w * t for w, t in zip(weights, terms))
    with torch.no_grad():
        last = outputs[-1].float()
        extra = {"bce": bce_sum(last, sal).mean(), "cc": cc(last, sal).mean(), "nss": nss(last, fix).mean()}
    return total.mean(), extra


# ----------------------------------------------------------------------------------------------
# optimiser groups (upstream models/resnet.py get_fine_tuning_parameters + main.py)
# ----------------------------------------------------------------------------------------------

def group_learning_rates(variant: str, lr: float) -> dict[str, float]:
    """Learning rates of the global, sal, sound and fusion groups (upstream ``main.py``)."""
    if variant == "av":
        return {"global": lr / 100, "sal": lr / 100, "sound": lr / 10, "fusion": lr}
    return {"global": lr / 10, "sal": lr / 100, "sound": 0.0, "fusion": 0.0}


def param_groups(model: torch.nn.Module, variant: str, lr: float, weight_decay: float, momentum: float = 0.9,
                 dampening: float = 0.9) -> list[dict]:
    """SGD parameter groups: one per parameter, with upstream's learning rate (module docstring)."""
    rates = group_learning_rates(variant, lr)
    groups = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        top = name.split(".")[0]
        bias = name.endswith("bias")
        if top in ("conv1", "bn1", "layer1", "layer2", "layer3"):
            rate = rates["global"]
        elif top == "soundnet":
            rate = rates["sound"]
        elif top == "av_fusion":
            rate = rates["fusion"]
        elif top in ("dsam", "fuse", "fuse_av"):
            rate = rates["sal"] if ".side_prep." in name else rates["sal"] / 10
            rate = 2 * rate if bias else rate
        else:
            raise ValueError(f"no optimiser group for parameter {name!r}")
        groups.append({"params": [p], "lr": rate, "initial_lr": rate, "weight_decay": weight_decay,
                       "momentum": momentum, "dampening": dampening, "name": name})
    return groups


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClipSample:
    """One training window: a video and 1-based frame numbers ``frames`` (≤ 90) to crop 16 from."""

    dataset: str
    video: str
    fps: float
    n_frames: int
    frames: tuple[int, ...]
    silent: bool


def gt_frame(indices, rounding: str = "upstream") -> int:
    """The ground-truth frame of a clip: ``round(median)`` half to even (``"upstream"``) or half up."""
    med = float(np.median(indices))
    return int(round(med)) if rounding == "upstream" else int(np.floor(med + 0.5))


def temporal_random_crop(frames, size: int, rng: np.random.Generator) -> list[int]:
    """Upstream ``TemporalRandomCrop``: a random window of ``size`` (start in 0…max(0, n−size−1)), loop-padded."""
    frames = list(frames)
    start = int(rng.integers(0, max(0, len(frames) - size - 1) + 1))
    out = frames[start:start + size]
    i = 0
    while len(out) < size:
        out.append(out[i])
        i += 1
    return out


class StavisTrainDataset(torch.utils.data.Dataset):
    """Training clips of the STAViS layout.

    Items: ``(clip [3, 16, 112, 112], audio [1, 1, 35280], sal [1, 112, 112] 0–255, fix [1, 112, 112] {0, 1},
    epoch (1-based, int64), index)``; every random choice is a function of ``(seed, epoch, index)``.

    Raises:
        InputError: no train list or no usable video, a missing frame / map / wav (named).
    """

    def __init__(self, root: str, split: int, datasets=DEFAULT_DATASETS, clip_length: int = 16, window: int = 90,
                 audio: bool = True, last_video_silent: bool = False, gt_rounding: str = "upstream",
                 hflip: bool = True, seed: int = 0):
        from avsal.evaluate.readers import StavisLayout, read_fold_list

        self.layout = StavisLayout(root)
        self.clip_length, self.audio, self.gt_rounding, self.hflip = clip_length, audio, gt_rounding, hflip
        self.seed, self.epoch = seed, 0
        self.samples: list[ClipSample] = []
        step = max(1, window - clip_length)
        used = []
        for name in datasets:
            try:
                ds = self.layout.dataset(name)
            except InputError:
                continue  # a dataset that is not there (upstream skips missing videos silently)
            path = self.layout.fold_list_path(ds, split, "train")
            if not path.exists():
                continue
            entries = [e for e in read_fold_list(path)
                       if e.nframes > 1 and self.layout.annotation_dir(ds, e.name).is_dir()]
            used.append(ds.name)
            for k, e in enumerate(entries):
                silent = last_video_silent and k == len(entries) - 1  # the last video upstream loads
                for j in range(1, e.nframes, step):
                    frames = tuple(range(j, min(e.nframes + 1, j + window)))
                    self.samples.append(ClipSample(ds.folder, e.name, e.fps, e.nframes, frames, silent))
        if not self.samples:
            raise InputError(self.layout.root, f"no training clips for split {split}: no train list "
                                               "(fold_lists/<DB>_list_train_<split>_fps.txt) with annotated videos")
        self.datasets = used
        self._tracks: dict[tuple[str, str], tuple[np.ndarray, int]] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def _ds(self, folder: str):
        from avsal.evaluate.readers import resolve_dataset

        return resolve_dataset(folder, self.layout.annotations)

    def _track(self, s: ClipSample) -> tuple[np.ndarray, int] | None:
        key = (s.dataset, s.video)
        if key not in self._tracks:
            from avsal.io.audio import load_audio

            path = self.layout.audio_path(self._ds(s.dataset), s.video)
            if not path.exists():
                raise InputError(path, "audio file not found")
            track = load_audio(path, sample_rate=None, mix="mean")
            if track is None:
                raise InputError(path, "no audio stream")
            self._tracks[key] = pp.prepare_track(track.samples, int(track.sample_rate), s.fps, self.clip_length,
                                                 source=str(path))
        return self._tracks[key]

    def __getitem__(self, i: int):
        from PIL import Image

        from avsal.evaluate.readers import read_mat_map

        s = self.samples[i]
        ds = self._ds(s.dataset)
        rng = np.random.default_rng([self.seed, self.epoch, i])
        idx = temporal_random_crop(s.frames, self.clip_length, rng)
        flip = self.hflip and rng.random() < 0.5
        frames = []
        for k in idx:
            path = self.layout.frame_path(ds, s.video, k)
            try:
                with Image.open(path) as im:
                    frames.append(pp.frame_tensor(np.asarray(im.convert("RGB"))))
            except (FileNotFoundError, OSError) as e:
                raise InputError(path, f"cannot read frame ({e})") from None
        clip = np.stack(frames, axis=1)  # [3, T, 112, 112]
        g = gt_frame(idx, self.gt_rounding)
        path = self.layout.eye_map_path(ds, s.video, g)
        try:
            with Image.open(path) as im:
                sal = pp.saliency_target(np.asarray(im.convert("L")))
        except (FileNotFoundError, OSError) as e:
            raise InputError(path, f"cannot read the density map ({e})") from None
        fix = pp.fixation_target(read_mat_map(self.layout.fix_map_path(ds, s.video, g), "eyeMap"))
        if flip:
            clip, sal, fix = clip[..., ::-1], sal[:, ::-1], fix[:, ::-1]
        audio = np.zeros(pp.AUDIO_LENGTH, np.float32)
        if self.audio and not s.silent:
            wav, rate = self._track(s)
            audio = pp.audio_excerpt(wav, idx[0], idx[-1], rate, s.fps)
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
        return (t(clip), t(audio).view(1, 1, -1), t(sal)[None], t(fix)[None], torch.tensor(self.epoch + 1), i)


@dataclass
class StavisTask:
    """Train ``stavis-visual`` or ``stavis-av`` (the :class:`avsal.train.engine.Task` protocol).

    Attributes:
        variant: ``visual`` or ``av``.
        data: STAViS root (``video_frames/``, ``video_audio/``, ``annotations/``, ``fold_lists/``).
        split: 1, 2 or 3.
        datasets: dataset names whose train lists are used (missing ones are skipped).
        tiny: tiny network (tests).
        epochs: total epochs (for the deep-supervision decay; set from the TrainConfig).
        last_video_silent: upstream defect: zero audio for the last video of every list.
        gt_rounding: ``upstream`` (half to even) or ``half_up``.
        hflip: random horizontal flips.
        sal_weights: (BCE, −CC, −NSS) weights.
        seed: data seed.
    """

    variant: str
    data: str
    split: int = 1
    datasets: tuple[str, ...] = DEFAULT_DATASETS
    tiny: bool = False
    epochs: int = 60
    last_video_silent: bool = False
    gt_rounding: str = "upstream"
    hflip: bool = True
    sal_weights: tuple[float, float, float] = SAL_WEIGHTS
    network: dict = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self):
        if self.variant not in ("visual", "av"):
            raise ValueError(f"variant must be 'visual' or 'av', got {self.variant!r}")
        if self.split not in (1, 2, 3):
            raise ValueError(f"split must be 1, 2 or 3, got {self.split!r}")
        if self.gt_rounding not in ("upstream", "half_up"):
            raise ValueError(f"gt_rounding must be 'upstream' or 'half_up', got {self.gt_rounding!r}")
        self.name = f"stavis-{self.variant}"

    def config_dict(self) -> dict:
        return asdict(self)

    def build_model(self) -> torch.nn.Module:
        from avsal.models.stavis.networks import Stavis, StavisConfig

        return Stavis(StavisConfig(variant=self.variant, tiny=self.tiny, **self.network))

    def dataset(self):
        return StavisTrainDataset(self.data, self.split, self.datasets, audio=self.variant == "av",
                                  last_video_silent=self.last_video_silent, gt_rounding=self.gt_rounding,
                                  hflip=self.hflip, seed=self.seed)

    def optimizer(self, model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
        """Upstream's four SGD optimisers as one SGD with per-parameter groups (same update)."""
        groups = param_groups(model, self.variant, cfg.lr, cfg.weight_decay, cfg.momentum)
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, dampening=0.9,
                               weight_decay=cfg.weight_decay, nesterov=False)

    def loss(self, model, batch):
        clip, audio, sal, fix, epoch, _ = batch
        outs = model(clip, audio if self.variant == "av" else None)
        return stavis_loss(outs, sal, fix, int(epoch[0]), self.epochs, self.sal_weights)


def load_inits(model: torch.nn.Module, variant: str, backbone: str | None = None, init: str | None = None,
               audio: str | None = None) -> list[str]:
    """Load the upstream inits into a freshly built model (partial, checked); returns notes for the log.

    Args:
        backbone: ``resnet-50-kinetics.pth`` (trunk).
        init: a visual STAViS model (upstream ``visual_split<s>_save_60.pth`` or avsal ``.safetensors``) whose
            matching weights are loaded (the AV recipe starts from it).
        audio: ``soundnet8.pth`` (AV only).

    Raises:
        InputError: unreadable files or weights that do not fit.
    """
    from avsal.models.checkpoints import CheckpointError, convert_state_dict, read_checkpoint

    tiny = bool(getattr(model.config, "tiny", False))
    notes = []
    own = model.state_dict()
    for path, name in ((backbone, "stavis-backbone"), (init, f"stavis-{variant}"), (audio, "stavis-soundnet8")):
        if path is None:
            continue
        if name == "stavis-soundnet8" and variant != "av":
            raise InputError(path, "SoundNet weights only apply to the av variant")
        obj = read_checkpoint(path)
        if str(path).endswith(".safetensors"):
            sd = {k: v for k, v in obj.items() if k in own}
        else:
            try:
                sd, _ = convert_state_dict(obj, name, {"tiny": tiny}, partial=True)
            except CheckpointError as e:
                raise InputError(path, str(e)) from None
        bad = [k for k, v in sd.items() if k not in own or tuple(v.shape) != tuple(own[k].shape)]
        if bad or not sd:
            raise InputError(path, f"does not fit {model.config.variant}: {bad[:3] or 'no matching keys'}")
        model.load_state_dict(sd, strict=False)
        notes.append(f"loaded {len(sd)} tensors from {os.path.basename(str(path))}")
    return notes
