"""``avsal train liu20``: train the Liu'20 network on eye-tracking data in the STAViS layout (MVVA included).

Upstream released no training code and the paper's text was not available to us, so the recipe here is
**inferred** and every choice is a config field (docs/liu20.md §Training):

* samples are sequences of ``seq_len`` (12, upstream's batch) consecutive frames of one video, because the
  ConvLSTM runs over them; ``x2`` = the frame, ``x1`` = 5 frames earlier (frame 1 at the start), the 16
  audio images and the face map of the frame, and the ground-truth density map (``eyeMap_%05d.jpg``)
  resized to the logit size (``input_size / 8``) and normalised to sum 1;
* the loss is the KL divergence of the spatial softmax of the logits from the ground truth
  (``kld_weight``), optionally minus ``cc_weight`` × the linear correlation coefficient (the released
  checkpoint is named after its validation CC and KL);
* optimisation is the shared engine's (:mod:`avsal.train.engine`): SGD, checkpoints, exact resume,
  ``torchrun``.

Data: ``ROOT/video_frames/<DB>/<video>/img_%05d.jpg``, ``ROOT/video_audio/<DB>/<video>/<video>.wav``,
``ROOT/annotations/<DB>/<video>/maps/eyeMap_%05d.jpg`` and the fold list
``<fold_lists>/<DB>_list_<subset>_<split>_fps.txt`` (``<name> <nframes> <fps>`` per line; the MVVA lists
are in this layout too), read with :class:`avsal.evaluate.readers.StavisLayout`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from avsal.errors import InputError

__all__ = ["Liu20SequenceDataset", "Liu20Task", "liu20_losses", "liu20_train_config"]


def liu20_train_config(**overrides):
    """:class:`~avsal.train.engine.TrainConfig` for Liu'20: one 12-frame sequence per step, plain SGD
    (lr 1e-4, momentum 0.9, weight decay 5e-4, every parameter at the base rate), 20 epochs, ×0.1 at
    epochs 10 and 15. Inferred, not upstream's (docs/liu20.md §Training)."""
    from avsal.train.engine import TrainConfig

    base = dict(epochs=20, batch_size=1, lr=1e-4, lr_mult=(1.0, 1.0, 1.0, 1.0), milestones=(10, 15), nesterov=False)
    base.update(overrides)
    return TrainConfig(**base)


def liu20_losses(logits: torch.Tensor, gt: torch.Tensor, eps: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-batch KL divergence and CC of the spatial softmax of the logits against density maps.

    Args:
        logits: ``[N, 1, h, w]``.
        gt: ``[N, 1, h, w]`` densities, each summing to 1 (an all-zero map is skipped).

    Returns:
        ``(kld, cc)``: means over the maps with ground truth (0 when none has).
    """
    logp = torch.log_softmax(logits.float().flatten(1), 1)
    g = gt.float().flatten(1)
    valid = g.sum(1) > 0
    if not valid.any():
        zero = logits.sum() * 0.0
        return zero, zero
    logp, g = logp[valid], g[valid]
    kld = (g * (torch.log(g.clamp_min(eps)) - logp)).sum(1).mean()
    p = logp.exp()
    pc, gc = p - p.mean(1, keepdim=True), g - g.mean(1, keepdim=True)
    cc = ((pc * gc).sum(1) / (pc.norm(dim=1) * gc.norm(dim=1)).clamp_min(eps)).mean()
    return kld, cc


class Liu20SequenceDataset(Dataset):
    """Sequences of consecutive frames of STAViS-layout videos (see the module docstring).

    Args:
        layout: a :class:`~avsal.evaluate.readers.StavisLayout`.
        dataset: dataset name (``MVVA``, ``AVAD``, … or a folder of ``annotations/``).
        split, subset: which fold list (``<DB>_list_<subset>_<split>_fps.txt``).
        seq_len: frames per sequence (consecutive, non-overlapping; a video's last partial sequence is dropped).
        input_size: square frame size (multiple of 8).
        frame_skip: frames between ``x1`` and ``x2``.
        face_source: ``"haar"`` or ``"none"`` (see :func:`avsal.models.liu20.predictor.resolve_face_source`).
        max_videos: use only the first N videos of the list (0: all).

    Items: ``(x1 [T,3,S,S], x2 [T,3,S,S], mel [T,1,16,S/4,S/4], face [T,1,S/8,S/8], gt [T,1,S/8,S/8], index)``.

    Raises:
        InputError: missing fold list, frames, audio or maps (named in the message); no sequence at all.
    """

    def __init__(self, layout, dataset: str, split: int = 1, subset: str = "train", seq_len: int = 12,
                 input_size: int = 256, frame_skip: int = 5, face_source: str = "haar", max_videos: int = 0):
        from avsal.evaluate.readers import read_fold_list
        from avsal.models.liu20.predictor import resolve_face_source

        self.layout, self.ds = layout, layout.dataset(dataset)
        self.seq_len, self.size, self.skip = seq_len, input_size, frame_skip
        entries = read_fold_list(layout.fold_list_path(self.ds, split, subset))
        self.entries = entries[:max_videos] if max_videos else entries
        self.sequences = [(v, s) for v, e in enumerate(self.entries)
                          for s in range(1, e.nframes - seq_len + 2, seq_len)]
        if not self.sequences:
            raise InputError(layout.fold_list_path(self.ds, split, subset),
                             f"no video has {seq_len} frames, so there is no training sequence")
        self.face_source = resolve_face_source(face_source)
        self._mel: dict[int, np.ndarray | None] = {}
        self._face: dict[tuple[int, int], np.ndarray] = {}

    def set_epoch(self, epoch: int) -> None:  # no augmentation: items do not depend on the epoch
        pass

    def __len__(self) -> int:
        return len(self.sequences)

    def _rgb(self, video: str, k: int) -> np.ndarray:
        path = self.layout.frame_path(self.ds, video, k)
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise InputError(path, "frame image missing or unreadable")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def _logmel(self, v: int) -> np.ndarray | None:
        if v not in self._mel:
            from avsal.io.audio import load_audio
            from avsal.models.liu20.features import SAMPLE_RATE, log_mel

            path = self.layout.audio_path(self.ds, self.entries[v].name)
            if not path.is_file():
                raise InputError(path, "audio file missing")
            track = load_audio(path, SAMPLE_RATE, mix="mean")
            self._mel[v] = log_mel(track.samples) if track is not None and len(track.samples) else None
        return self._mel[v]

    def _gt(self, video: str, k: int) -> np.ndarray:
        from avsal.evaluate.readers import read_image_map

        side = self.size // 8
        d = cv2.resize(read_image_map(self.layout.eye_map_path(self.ds, video, k)).astype(np.float32),
                       (side, side), interpolation=cv2.INTER_AREA)
        d = np.clip(d, 0, None)
        total = d.sum()
        return d / total if total > 0 else d

    def __getitem__(self, i: int):
        from avsal.models.liu20.faces import GMMConfig, gmm_face_map, normalise_gmm
        from avsal.models.liu20.features import frame_mel_image, mel_window, preprocess_frame

        v, start = self.sequences[i]
        e = self.entries[v]
        S = self.size
        logmel = self._logmel(v)
        x1, x2, mel, face, gt = [], [], [], [], []
        for k in range(start, start + self.seq_len):  # 1-based frame numbers
            rgb = self._rgb(e.name, k)
            x2.append(preprocess_frame(rgb, S))
            x1.append(preprocess_frame(self._rgb(e.name, max(k - self.skip, 1)), S))
            if logmel is None:
                mel.append(np.zeros((16, S // 4, S // 4), np.float32))
            else:
                mel.append(np.stack([frame_mel_image(logmel, j / e.fps, S // 4) for j in mel_window(k - 1, e.nframes)]))
            if (v, k) not in self._face:
                boxes, speaking = self.face_source(rgb, (k - 1) / e.fps, None)
                self._face[(v, k)] = normalise_gmm(gmm_face_map(boxes, speaking, rgb.shape[:2], GMMConfig(size=S // 8)))
            face.append(self._face[(v, k)])
            gt.append(self._gt(e.name, k))
        t = lambda a: torch.from_numpy(np.ascontiguousarray(np.stack(a), dtype=np.float32))  # noqa: E731
        return t(x1), t(x2), t(mel)[:, None], t(face)[:, None], t(gt)[:, None], torch.tensor(i)


@dataclass
class Liu20Task:
    """Train :class:`~avsal.models.liu20.networks.Liu20Net` (a :class:`avsal.train.engine.Task`).

    Attributes:
        data: STAViS-layout root; ``fold_lists``: its fold-list folder (default ``data/fold_lists``).
        db: dataset name or ``annotations/`` folder (``dataset`` of :class:`Liu20SequenceDataset`).
        split, subset, seq_len, input_size, frame_skip, face_source, max_videos: see
            :class:`Liu20SequenceDataset`.
        kld_weight, cc_weight: loss = ``kld_weight · KLD − cc_weight · CC``.
        network: extra :class:`~avsal.models.liu20.networks.Liu20Config` fields.
        seed: unused by the data (no augmentation); kept for the engine.
    """

    data: str
    fold_lists: str | None = None
    db: str = "MVVA"
    split: int = 1
    subset: str = "train"
    seq_len: int = 12
    input_size: int = 256
    frame_skip: int = 5
    face_source: str = "haar"
    max_videos: int = 0
    kld_weight: float = 1.0
    cc_weight: float = 0.0
    network: dict = field(default_factory=dict)
    seed: int = 0
    name: str = "liu20"

    def config_dict(self) -> dict:
        return asdict(self)

    def build_model(self) -> torch.nn.Module:
        from avsal.models.liu20.networks import Liu20Net

        return Liu20Net(**self.network)

    def dataset(self):
        from avsal.evaluate.readers import StavisLayout

        return Liu20SequenceDataset(StavisLayout(self.data, self.fold_lists), self.db, self.split, self.subset,
                                    self.seq_len, self.input_size, self.frame_skip, self.face_source,
                                    self.max_videos)

    def loss(self, model, batch):
        """Each sequence of the batch through the network (the ConvLSTM runs over its frames), then the loss."""
        x1, x2, mel, face, gt, _ = batch
        logits = torch.cat([model(x1[b], x2[b], mel[b], face[b]) for b in range(x2.shape[0])])
        kld, cc = liu20_losses(logits, gt.flatten(0, 1))
        return self.kld_weight * kld - self.cc_weight * cc, {"kld": kld.detach(), "cc": cc.detach()}
