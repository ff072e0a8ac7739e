"""The STANet training tasks: SCAM branches (S, SA, ST; coarse and fine) and STA.

Upstream recipe (``docs/weak_pipeline.md``, "Training recipe"): SCAM — SGD lr 1e-4, wd 5e-4, 15 epochs, the
learning rate ×0.1 at epochs 5 and 10 for S only (upstream ``S/train.py`` is the only SCAM script that calls
its ``reduce_lr``; SA and ST keep a constant rate), multilabel soft-margin loss on the raw and the fused
logits (ST: ``0.4·Σ raw + 1.0·Σ fused`` over its three frames),
resize then random crop and ColorJitter(0.3, 0.3, 0.3, 0.1); STA — lr 1e-3, wd 1e-4,
15 epochs, ``Σ over the 6 outputs of BCEWithLogits + KLD(σ(p), gt)``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import torch

from avsal.data.datasets import (FrameDataset, STADataset, TripletDataset, read_classes, read_manifest,
                                 read_pseudo_gt)
from avsal.data.transforms import ColorJitter, TrainTransform
from avsal.models.stanet.networks import SANet, SNet, STANet, STNet
from avsal.train.engine import TrainConfig
from avsal.train.losses import KLD_EPS, multilabel_soft_margin, saliency_loss

BRANCHES = {"S": ("stanet-s", SNet), "SA": ("stanet-sa", SANet), "ST": ("stanet-st", STNet)}

#: (resize, crop) per branch at the coarse stage (``docs/stanet.md`` §3; ST at 256: upstream's 224 crashes),
#: and for every branch at the fine stage (the 356² crops).
COARSE_SIZES = {"S": (300, 256), "SA": (256, 224), "ST": (256, 256)}
FINE_SIZE = (356, 356)
#: Upstream batch sizes (S, SA: 8; ST: 3 triplets).
BATCH_SIZES = {"S": 8, "SA": 8, "ST": 3}
#: Upstream learning-rate decay epochs (×0.1) per branch: only ``S/train.py`` calls ``reduce_lr`` (at
#: its ``decay_points`` 5 and 10); ``SA/train.py`` and ``ST/train.py`` parse the same option but never
#: decay, so their rate stays constant.
MILESTONES = {"S": (5, 10), "SA": (), "ST": ()}


def scam_train_config(branch: str, **overrides) -> TrainConfig:
    """The default :class:`TrainConfig` of a SCAM branch, with overrides.

    Batch size :data:`BATCH_SIZES` and decay epochs :data:`MILESTONES` of the branch (upstream: only S
    decays); pass ``milestones=(5, 10)`` to decay SA/ST as well (STA_trial's recipe).

    Raises:
        KeyError: unknown branch.
    """
    return TrainConfig(**{"batch_size": BATCH_SIZES[branch], "milestones": MILESTONES[branch], **overrides})


def sta_train_config(**overrides) -> TrainConfig:
    """The default :class:`TrainConfig` of STA (lr 1e-3, wd 1e-4, batch 1, no decay), with overrides."""
    return TrainConfig(**{"lr": 1e-3, "weight_decay": 1e-4, "batch_size": 1, "milestones": (), **overrides})


def load_pretrained(model: torch.nn.Module, backbone: str | None = None, audio: str | None = None) -> list[str]:
    """Load torchvision/WSL ResNeXt and/or VGGSound weights into ``model.backbone`` / ``model.audio_net``
    (after the heads were initialised, as upstream). Returns notes for the log.

    Raises:
        InputError: unreadable or mismatching files.
    """
    from avsal.errors import InputError
    from avsal.models.checkpoints import read_checkpoint
    from avsal.models.checkpoints import CheckpointError, convert_state_dict

    notes = []
    tiny = getattr(getattr(model, "config", None), "tiny", False)
    for path, name, attr in ((backbone, "backbone", "backbone"), (audio, "audio", "audio_net")):
        if path is None or not hasattr(model, attr):
            continue
        obj = read_checkpoint(path)
        if not path.endswith(".safetensors"):
            try:
                obj, _ = convert_state_dict(obj, name, {"tiny": tiny}, partial=True)
            except CheckpointError as e:
                raise InputError(path, str(e)) from None
        missing, unexpected = getattr(model, attr).load_state_dict(obj, strict=False)
        if unexpected or [k for k in missing if not k.startswith("fc")]:
            raise InputError(path, f"does not fit {attr}: missing {missing[:3]}, unexpected {unexpected[:3]}")
        notes.append(f"{attr}: loaded {os.path.basename(path)}")
    return notes


@dataclass
class ScamTask:
    """Train one class-activation branch.

    Attributes:
        branch: ``S``, ``SA`` or ``ST``.
        stage: ``coarse`` (full frames) or ``fine`` (a crops root from ``avsal pseudo-gt crop``).
        data: prepared root.
        split: manifest split to train on.
        tiny: tiny backbones (tests).
        resize, crop: override the stage's sizes.
        jitter: colour jitter on/off.
        interpolation: image resize, ``"pil"`` (default, upstream's PIL bilinear) or ``"cv2"``
            (:func:`avsal.data.transforms.resize_square`).
        independent_crops: ST only — crop each frame of a triplet independently (upstream) instead of sharing.
        st_edges: ST only — ``"skip"`` (default, upstream): a clip's first and last second (no t−1 or t+1)
            are not trained on; ``"repeat"``: they are, with frame t standing in for the missing neighbour.
        switch_list: SA only — the audio-relevance list (``ROOT/audio_relevance.csv`` of
            :func:`avsal.data.relevance.write_audio_relevance`, rows with ``relevant`` 1; or plain
            ``clip,second`` lines): upstream's "switch" frames, the only ones upstream SA trains on. ``None``:
            every frame (the run's ``config.json`` then says ``"sa_frames": "all ..."``).
        st_weights: ST's (raw, fused) loss weights.
        network: extra :class:`~avsal.models.stanet.STANetConfig` fields.
        seed: augmentation seed.
    """

    branch: str
    stage: str
    data: str
    split: str = "train"
    tiny: bool = False
    resize: int | None = None
    crop: int | None = None
    jitter: bool = True
    interpolation: str = "pil"
    independent_crops: bool = False
    st_edges: str = "skip"
    switch_list: str | None = None
    st_weights: tuple[float, float] = (0.4, 1.0)
    network: dict = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self):
        if self.branch not in BRANCHES:
            raise ValueError(f"branch must be S, SA or ST, got {self.branch!r}")
        if self.stage not in ("coarse", "fine"):
            raise ValueError(f"stage must be coarse or fine, got {self.stage!r}")
        self.name = BRANCHES[self.branch][0]
        r, c = COARSE_SIZES[self.branch] if self.stage == "coarse" else FINE_SIZE
        self.resize, self.crop = self.resize or r, self.crop or c
        self.classes = read_classes(self.data)

    def config_dict(self) -> dict:
        d = asdict(self)
        d["classes"] = self.classes
        if self.branch == "SA":
            d["sa_frames"] = (f"audio-relevant only ({self.switch_list})" if self.switch_list else
                              "all (no audio-relevance list; upstream trains SA on audio-relevant frames only)")
        return d

    def build_model(self) -> torch.nn.Module:
        return BRANCHES[self.branch][1](tiny=self.tiny, num_classes=len(self.classes), **self.network)

    def transform(self, train: bool = True) -> TrainTransform:
        return TrainTransform(self.resize, self.crop, ColorJitter() if self.jitter else None, train,
                              self.interpolation)

    def samples(self):
        rows = read_manifest(self.data, self.split)
        if self.branch == "SA" and self.switch_list:
            from avsal.data.relevance import read_relevant

            keep = read_relevant(self.switch_list)
            rows = [r for r in rows if (r.clip, r.second) in keep]
            if not rows:
                raise ValueError(f"{self.switch_list}: no audio-relevant frame in the {self.split} split")
        return rows

    def dataset(self):
        k = len(self.classes)
        if self.branch == "ST":
            return TripletDataset(self.samples(), self.transform(), k, self.seed, self.independent_crops,
                                  self.st_edges)
        return FrameDataset(self.samples(), self.transform(), k, self.seed)

    def loss(self, model, batch):
        """Multilabel soft-margin on raw + fused logits (ST: ``w_raw·Σ raw + w_fused·Σ fused`` over 3 frames)."""
        frames, audio, label, _ = batch
        if self.branch == "S":
            raw, fused, _, _ = model(frames)
            return multilabel_soft_margin(raw, label) + multilabel_soft_margin(fused, label), {}
        if self.branch == "SA":
            raw, fused, _, _ = model(frames, audio)
            return multilabel_soft_margin(raw, label) + multilabel_soft_margin(fused, label), {}
        out = model(frames)
        raw = sum(multilabel_soft_margin(out[k], label) for k in (0, 2, 4))
        fused = sum(multilabel_soft_margin(out[k], label) for k in (1, 3, 5))
        w_raw, w_fused = self.st_weights
        return w_raw * raw + w_fused * fused, {"loss_raw": raw.detach(), "loss_fused": fused.detach()}


@dataclass
class STATask:
    """Train STA on pseudo-GTs.

    Attributes:
        data: prepared root (full frames and audio features).
        pseudo_gt: pseudo-GT folder (``avsal pseudo-gt finalize``).
        split: manifest split.
        size: square input size (356).
        tiny: tiny backbones (tests).
        jitter: colour jitter of the frames.
        interpolation: frame and pseudo-GT resize, ``"pil"`` (default, upstream) or ``"cv2"``.
        shared_jitter: one jitter draw for the three frames of a triplet (default ``False``: one per frame,
            as upstream).
        kld_normalise: ``"sample"`` (default) or ``"batch"`` (upstream ``loss.py``).
        kld_eps: the KLD's guard (default upstream's ``sys.float_info.epsilon``; see
            :data:`avsal.train.losses.KLD_EPS`).
        network: extra :class:`~avsal.models.stanet.STANetConfig` fields.
        seed: augmentation seed.
    """

    data: str
    pseudo_gt: str
    split: str = "train"
    size: int = 356
    tiny: bool = False
    jitter: bool = True
    interpolation: str = "pil"
    shared_jitter: bool = False
    kld_normalise: str = "sample"
    kld_eps: float = KLD_EPS
    network: dict = field(default_factory=dict)
    seed: int = 0
    name: str = "stanet-sta"

    def config_dict(self) -> dict:
        return asdict(self)

    def build_model(self) -> torch.nn.Module:
        return STANet(tiny=self.tiny, **self.network)

    def dataset(self):
        return STADataset(read_manifest(self.data, self.split), read_pseudo_gt(self.pseudo_gt), self.size,
                          ColorJitter() if self.jitter else None, self.seed, self.shared_jitter,
                          self.interpolation)

    def loss(self, model, batch):
        """Σ over the 6 outputs of BCEWithLogits + KLD against the matching pseudo-GT (t, t, t−1, t−1, t+1, t+1)."""
        frames, audio, gt, _ = batch
        outs = model(frames, audio)
        # upstream order f0_1, f0_0, f1_1, f1_0, f2_0, f2_1 <-> (gt_t, gt_t, gt_t-1, gt_t-1, gt_t+1, gt_t+1)
        pairs = zip(outs, (0, 0, 1, 1, 2, 2))
        total = sum(saliency_loss(o.float(), gt[:, k], self.kld_normalise, self.kld_eps) for o, k in pairs)
        return total, {}
