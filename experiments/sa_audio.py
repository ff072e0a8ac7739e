"""Does SA use the audio? A generated task that vision alone cannot solve.

Every frame (``size``²) holds two textured squares of **different** classes (K classes: stripes at a
class-specific angle and colour, at random places); the audio features carry the band of **one** of the two
classes (the "sounding" object), and the category label is that class. Which of the two sounds is a coin
flip, so a visual-only network can do no better than chance between the two (accuracy ≤ 0.5 in
expectation). The networks are trained from scratch (tiny backbones) with avsal's training loop
(:func:`avsal.train.engine.fit`: upstream's SGD, parameter groups and multilabel soft-margin loss on the raw
and fused logits) on the category labels only.

Reported on held-out frames, for S (the visual-only control) and for SA with each fusion
(``sa_fusion``: ``avfusion`` = upstream's AVfusion, ``audio_query`` = avsal's audio-conditioned mask).
As upstream, SA's audio network starts pretrained: a tiny audio network first learns to name the sound from
the audio alone (:func:`pretrain_audio`, the stand-in for VGGSound), the rest from scratch.

* **accuracy**: the class picked by the logits upstream's test scripts use (S: raw head, SA: fused);
* **CAM pointing**: the CAM of the predicted class (``relu((map_raw + map_fused) / 2)``, upstream's read-out)
  peaks on the sounding object (its peak cell of the ``⌈S/32⌉²`` map overlaps the object), and is higher on
  average over the sounding object than over the silent one;
* **audio ablation**: accuracy with the audio muted (the features of silence, all zeros) and with the
  audio swapped for the silent object's sound (then ``follows swap`` = how often SA picks the silent
  object's class, i.e. follows the sound).

Result (seed 0, 160 held-out frames; tables in ``docs/weak_pipeline.md``, "Does SA use the audio?"): S stays
at chance (0.46 at 128², 0.44 at 256²); SA with upstream's AVfusion too (0.54 / 0.46), and muting or swapping
the sound changes none of its predictions; SA with ``audio_query`` reaches 1.00 at 128² (20 epochs) and 0.89 at
256² (12 epochs), drops to 0.28 / 0.40 when muted and names the silent object in 1.00 / 0.91 of the frames
when given its sound. Its CAM peaks on the sounding object in 0.78 of the frames at 256² (0.33 at 128², where
the maps are 4×4) and is higher on the sounding than on the silent object in 0.89.

Usage::

    OMP_NUM_THREADS=1 python experiments/sa_audio.py [--train 320] [--test 160] [--epochs 20] [--size 128]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass

import numpy as np
import torch

PALETTE = np.array([[230, 60, 60], [60, 200, 60], [70, 90, 240], [230, 200, 40], [200, 60, 220], [40, 210, 210]])


def texture(k: int, n_classes: int, side: int) -> np.ndarray:
    """Class k's texture: stripes at angle π·k/K in colour k (uint8 ``[side, side, 3]``)."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    theta = np.pi * k / n_classes
    stripes = (np.sin((xx * np.cos(theta) + yy * np.sin(theta)) * 2 * np.pi / 6) > 0).astype(np.float32)
    return (stripes[..., None] * PALETTE[k % 6] + (1 - stripes[..., None]) * 30).astype(np.uint8)


def audio_features(k: int, rng: np.random.Generator) -> np.ndarray:
    """A stand-in for class k's sound: N(0, 1) features ``[81, 199]`` with a class band raised by 1.5."""
    f = rng.normal(0, 1, (81, 199)).astype(np.float32)
    f[5 + 18 * k: 15 + 18 * k] += 1.5
    return f


@dataclass
class TwoObjectSet:
    """Frames ``[N, 3, S, S]`` (ImageNet-normalised), audio ``[N, 81, 199]`` of the sounding class, the
    sounding and silent classes ``[N]``, their boxes ``[N, 3]`` (y, x, side in px), and the silent class's
    audio ``[N, 81, 199]`` (for the swap ablation)."""

    frames: torch.Tensor
    audio: torch.Tensor
    sounding: torch.Tensor
    silent: torch.Tensor
    sounding_box: np.ndarray
    silent_box: np.ndarray
    swapped_audio: torch.Tensor


def make_set(n: int, size: int = 128, n_classes: int = 4, seed: int = 0) -> TwoObjectSet:
    """``n`` frames of the two-object task (see the module docstring), deterministic in ``seed``."""
    from avsal.data.transforms import to_tensor

    rng = np.random.default_rng(seed)
    side = size // 4
    frames, audio, swapped, snd, sil, bs, bq = [], [], [], [], [], [], []
    for _ in range(n):
        a, b = rng.choice(n_classes, 2, replace=False)
        img = rng.integers(70, 130, (size, size, 3)).astype(np.uint8)
        while True:
            p = rng.integers(0, size - side, (2, 2))
            if abs(p[0, 0] - p[1, 0]) >= side or abs(p[0, 1] - p[1, 1]) >= side:
                break
        for k, (y, x) in zip((a, b), p):
            img[y:y + side, x:x + side] = texture(int(k), n_classes, side)
        frames.append(to_tensor(img.astype(np.float32) / 255))
        audio.append(audio_features(int(a), rng))
        swapped.append(audio_features(int(b), rng))
        snd.append(int(a))
        sil.append(int(b))
        bs.append((p[0, 0], p[0, 1], side))
        bq.append((p[1, 0], p[1, 1], side))
    return TwoObjectSet(torch.stack(frames), torch.from_numpy(np.stack(audio)), torch.tensor(snd), torch.tensor(sil),
                        np.array(bs), np.array(bq), torch.from_numpy(np.stack(swapped)))


class _Data(torch.utils.data.Dataset):
    """Training frames, drawn afresh every epoch (seeded by ``(seed, epoch)``): a network cannot memorise
    which object sounds in a frame it has seen, so only the audio can beat chance."""

    def __init__(self, n: int, size: int, k: int, seed: int):
        self.n, self.size, self.k, self.seed = n, size, k, seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.s = make_set(self.n, self.size, self.k, self.seed + 7919 * (epoch + 1))

    def __len__(self):
        return len(self.s.sounding)

    def __getitem__(self, i):
        label = torch.zeros(self.k)
        label[self.s.sounding[i]] = 1
        return self.s.frames[i], self.s.audio[i], label, i


class _Task:
    """An in-memory SCAM task for :func:`avsal.train.engine.fit` (loss of :class:`avsal.train.tasks.ScamTask`)."""

    def __init__(self, branch: str, data: _Data, k: int, network: dict):
        self.branch, self.data, self.k, self.network = branch, data, k, network
        self.name = f"stanet-{branch.lower()}"

    def build_model(self):
        from avsal.models.stanet.networks import SANet, SNet

        return (SNet if self.branch == "S" else SANet)(tiny=True, num_classes=self.k, **self.network)

    def dataset(self):
        return self.data

    def loss(self, model, batch):
        from avsal.train.losses import multilabel_soft_margin

        frames, audio, label, _ = batch
        raw, fused, _, _ = model(frames) if self.branch == "S" else model(frames, audio)
        return multilabel_soft_margin(raw, label) + multilabel_soft_margin(fused, label), {}

    def config_dict(self):
        return {"branch": self.branch, "network": self.network, "frames_per_epoch": self.data.n}


@torch.no_grad()
def evaluate(net, branch: str, s: TwoObjectSet, audio: torch.Tensor | None = None) -> dict:
    """Accuracy (vs the sounding class), choice of the silent class, and CAM pointing on a set."""
    net.eval()
    if branch == "S":
        raw, fused, m1, m2 = net(s.frames)
        logits = raw  # upstream S/test.py ranks its raw head
    else:
        raw, fused, m1, m2 = net(s.frames, s.audio if audio is None else audio)
        logits = fused  # upstream SA/test.py ranks the fused logits
    pred = logits.argmax(1)
    cam = torch.relu((m1 + m2) / 2)[torch.arange(len(pred)), pred][:, None]  # [N, 1, h, w]
    size = s.frames.shape[-1]
    up = torch.nn.functional.interpolate(cam, size=(size, size), mode="bilinear", align_corners=False)[:, 0].numpy()
    h, w = cam.shape[-2:]
    peak = over = 0
    for i in range(len(pred)):
        py, px = np.unravel_index(np.argmax(cam[i, 0].numpy()), (h, w))
        cell = (py * size / h, (py + 1) * size / h, px * size / w, (px + 1) * size / w)  # the peak cell, px
        y, x, side = s.sounding_box[i]
        peak += bool(cell[0] < y + side and y < cell[1] and cell[2] < x + side and x < cell[3])
        qy, qx, qs = s.silent_box[i]
        over += bool(up[i, y:y + side, x:x + side].mean() > up[i, qy:qy + qs, qx:qx + qs].mean())
    n = len(pred)
    return {"accuracy": float((pred == s.sounding).float().mean()),
            "picks_silent": float((pred == s.silent).float().mean()),
            "cam_peak_on_sounding": peak / n, "cam_sounding_over_silent": over / n, "frames": n}


def pretrain_audio(s: TwoObjectSet, k: int, epochs: int = 3, lr: float = 0.05, seed: int = 0) -> dict:
    """The stand-in for VGGSound pre-training: a tiny :class:`~avsal.models.backbones.AudioResNet` taught to
    name the sounding class from the audio alone (upstream SA starts from the pretrained VGGSound network;
    trained from scratch through SA's N(0, 0.01)-initialised heads, the audio path gets gradients of
    ~1e-7 and never learns). Returns the trunk's state dict (without ``fc_``)."""
    from avsal.models.backbones import AudioResNet

    torch.manual_seed(seed)
    net = AudioResNet(tiny=True, num_classes=k)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(s.sounding), generator=g).split(32):
            loss = torch.nn.functional.cross_entropy(net(s.audio[idx, None]), s.sounding[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return {n: v for n, v in net.state_dict().items() if not n.startswith("fc_")}


def he_init_heads(model: torch.nn.Module) -> None:
    """He-normal re-initialisation of every ``Conv2d`` in the heads (S and SA alike). Upstream's N(0, 0.01)
    suits its 2048-channel heads (a 3×3 conv then keeps the signal, gain ≈ 0.01·√(2048·9) ≈ 1.4) but not the
    tiny ones (256 channels: ×0.48 per layer, so SA's three-layer CAM head starts dead and never learns)."""
    for head in model.head_modules():
        for m in head.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    torch.nn.init.zeros_(m.bias)


@torch.no_grad()
def _audio_accuracy(trunk: dict, s: TwoObjectSet, k: int) -> float:
    """How well the pretrained audio embedding names the sounding class on held-out frames (nearest class mean
    of the embeddings): what SA's audio path can know."""
    from avsal.models.backbones import AudioResNet

    net = AudioResNet(tiny=True, num_classes=0)
    net.load_state_dict(trunk)
    e = net.eval().embed(s.audio[:, None])
    means = torch.stack([e[s.sounding == c].mean(0) for c in range(k)])
    return float((torch.cdist(e, means).argmin(1) == s.sounding).float().mean())


def run(out: str, n_train: int = 320, n_test: int = 160, epochs: int = 20, size: int = 128, n_classes: int = 4,
        batch_size: int = 16, lr: float = 0.003, seed: int = 0, fusions=("avfusion", "audio_query"),
        head_width: int = 64, control: bool = True, progress: bool = False) -> dict:
    """Train S and SA (one run per fusion) on the two-object task; evaluate on held-out frames.

    Returns:
        ``{"S": {...}, "SA/<fusion>": {..., "muted": {...}, "swapped": {...}}}`` (see :func:`evaluate`).
    """
    from avsal.train.engine import TrainConfig, fit

    train, test = make_set(n_train, size, n_classes, seed), make_set(n_test, size, n_classes, seed + 1000)
    muted = torch.zeros_like(test.audio)
    audio_init = pretrain_audio(train, n_classes, seed=seed)
    results = {"audio_only": {"accuracy": _audio_accuracy(audio_init, test, n_classes), "frames": n_test}}
    for branch, fusion in [("S", None)] * control + [("SA", f) for f in fusions]:
        key = branch if fusion is None else f"SA/{fusion}"
        task = _Task(branch, _Data(n_train, size, n_classes, seed), n_classes,
                     {} if fusion is None else {"sa_fusion": fusion, "st_channels": head_width})
        cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, milestones=(int(epochs * 0.75),),
                          save_every=0, device="cpu", seed=seed, weight_decay=1e-4)
        run_dir = os.path.join(out, key.replace("/", "_"))
        def init(m, branch=branch):
            he_init_heads(m)
            if branch == "SA":
                m.audio_net.load_state_dict(audio_init)

        fit(task, cfg, run_dir, progress=progress, init_fn=init)
        net = task.build_model()
        from safetensors.torch import load_file

        net.load_state_dict(load_file(os.path.join(run_dir, "model.safetensors")))
        res = evaluate(net, branch, test)
        if branch == "SA":
            res["muted"] = evaluate(net, branch, test, muted)
            res["swapped"] = evaluate(net, branch, test, test.swapped_audio)
        results[key] = res
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="work folder (default: a temporary one)")
    ap.add_argument("--train", type=int, default=320)
    ap.add_argument("--test", type=int, default=160)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.003)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fusions", nargs="+", default=["avfusion", "audio_query"])
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        res = run(args.out or tmp, args.train, args.test, args.epochs, args.size, lr=args.lr, seed=args.seed,
                  fusions=args.fusions)
    print(f"audio network alone: accuracy {res.pop('audio_only')['accuracy']:.2f}")
    for k, v in res.items():
        line = (f"{k:16s} accuracy {v['accuracy']:.2f}  picks silent {v['picks_silent']:.2f}  "
                f"CAM peak on sounding object {v['cam_peak_on_sounding']:.2f}  "
                f"CAM sounding > silent {v['cam_sounding_over_silent']:.2f}")
        for ab in ("muted", "swapped"):
            if ab in v:
                line += f"  | {ab}: accuracy {v[ab]['accuracy']:.2f}, picks silent {v[ab]['picks_silent']:.2f}"
        print(line + f"  ({v['frames']} held-out frames)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
