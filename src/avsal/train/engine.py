"""The training loop shared by every avsal training command.

* One process or many: under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) the model is wrapped in
  ``DistributedDataParallel`` (gloo on CPU, NCCL on GPU); the same command runs alone without it.
* Deterministic and exactly resumable: the epoch's sample order is a permutation seeded by
  ``(seed, epoch)``, split across ranks; items are functions of ``(seed, epoch, index)``; a checkpoint holds
  the model, optimizer, scheduler, RNG states, epoch and position in the epoch, so *2 iterations, kill,
  resume, 2 iterations* gives the same weights as 4 straight.
* Checkpoints every ``save_every`` iterations and at each epoch end (``RUN/checkpoints/``, written to a temp
  file and renamed; ``last.pt`` always points at the newest), logs in ``RUN/log.csv`` (+ TensorBoard when
  installed), a tqdm bar on rank 0, the full config in ``RUN/config.json``, the final weights in avsal's
  format (``RUN/model.safetensors`` + ``.json``).

Optimisation follows upstream (``docs/stanet.md`` §3): SGD with Nesterov momentum, four parameter groups —
backbone weights ×1, backbone biases ×2, head weights ×10, head biases ×20 of the base learning rate —
and the learning rate multiplied by ``gamma`` at the given epochs.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Protocol

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

import avsal


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping settings (every value is a config field; defaults: upstream SCAM).

    Attributes:
        epochs: training epochs.
        batch_size: per-process batch size.
        lr: base learning rate; momentum, weight_decay, nesterov: SGD settings.
        lr_mult: multipliers of (backbone weights, backbone biases, head weights, head biases).
        milestones, gamma: learning rate × gamma at these epochs.
        seed: data order, augmentation and head initialisation seed.
        save_every: checkpoint every N iterations (0: only per epoch).
        max_iters: stop after this many iterations in total (0: no limit), e.g. for quick tests.
        bf16: bfloat16 autocast for forward passes.
        workers: DataLoader worker processes.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (cuda when available).
    """

    epochs: int = 15
    batch_size: int = 8
    lr: float = 1e-4
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    lr_mult: tuple[float, float, float, float] = (1.0, 2.0, 10.0, 20.0)
    milestones: tuple[int, ...] = (5, 10)
    gamma: float = 0.1
    seed: int = 0
    save_every: int = 500
    max_iters: int = 0
    bf16: bool = False
    workers: int = 0
    device: str = "auto"


class Task(Protocol):
    """What a training command provides to :func:`fit`."""

    name: str

    def build_model(self) -> torch.nn.Module:
        """A freshly initialised network (weights may be loaded by ``fit``'s ``init_fn``)."""

    def dataset(self):
        """A map-style dataset with ``set_epoch(epoch)``; items are tuples of tensors ending with the index."""

    def loss(self, model: torch.nn.Module, batch) -> tuple[torch.Tensor, dict]:
        """``(scalar loss, {name: extra scalar to log})`` of one batch."""

    def config_dict(self) -> dict:
        """Every setting of the task, for ``RUN/config.json``."""

    # optional: ``optimizer(model, cfg) -> torch.optim.Optimizer`` replaces the default SGD groups.


@dataclass
class DistInfo:
    """This process's place in a (possibly single-process) run: rank, world size, local rank, device."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str = "auto") -> DistInfo:
    """Initialise ``torch.distributed`` when launched by torchrun (``WORLD_SIZE`` > 1); else one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if world > 1 and not use_cuda:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    return DistInfo(rank, world, local, dev)


def param_groups(model: torch.nn.Module, lr: float, mult) -> list[dict]:
    """Upstream's four groups: backbone (``backbone.*``, ``audio_net.*``) weights/biases, head weights/biases."""
    groups = [[], [], [], []]
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        head = not name.startswith(("backbone.", "audio_net."))
        is_weight = name.endswith("weight")
        groups[2 * head + (0 if is_weight else 1)].append(p)
    return [{"params": g, "lr": lr * m, "initial_lr": lr * m} for g, m in zip(groups, mult) if g]


def epoch_batches(n: int, batch_size: int, epoch: int, seed: int, rank: int, world: int) -> list[list[int]]:
    """This rank's batches of an epoch: a ``(seed, epoch)`` permutation, dealt round-robin, whole batches only."""
    perm = np.random.default_rng([seed, epoch, 7919]).permutation(n)
    per_rank = n // world
    mine = perm[rank: per_rank * world: world]
    nb = len(mine) // batch_size
    if nb == 0:
        raise ValueError(f"{n} samples are fewer than one batch of {batch_size} per process ({world} processes)")
    return [mine[i * batch_size:(i + 1) * batch_size].tolist() for i in range(nb)]


def _rng_state() -> dict:
    st = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
            "numpy": [st[0], torch.from_numpy(st[1].astype(np.int64)), st[2], st[3], st[4]]}


def _set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    random.setstate((3, tuple(s["python"]), None))
    n = s["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))


def _atomic_save(obj, path: str) -> None:
    from avsal.io.write import atomic_file

    with atomic_file(path) as tmp:
        torch.save(obj, tmp)


def _unwrap(model):
    return model.module if hasattr(model, "module") else model


class _Logger:
    def __init__(self, run: str, enabled: bool):
        self.enabled = enabled
        self.path = os.path.join(run, "log.csv")
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(os.path.join(run, "tensorboard"))
            except Exception:  # tensorboard not installed: CSV only
                self.tb = None

    def log(self, row: dict) -> None:
        if not self.enabled:
            return
        new = not os.path.exists(self.path)
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, float):
                    self.tb.add_scalar(k, v, row["step"])


def fit(task: Task, cfg: TrainConfig, run: str, resume: bool = False, progress: bool = True,
        init_fn: Callable[[torch.nn.Module], None] | None = None) -> dict:
    """Train ``task`` into the run folder ``run``.

    Args:
        task: model, dataset and loss (see :class:`Task`).
        cfg: optimisation settings.
        run: output folder (created).
        resume: continue from ``run/checkpoints/last.pt``.
        progress: tqdm bar on rank 0.
        init_fn: called on the freshly built model (e.g. to load pretrained backbones) unless resuming.

    Returns:
        ``{"step", "epoch", "last_loss", "losses"}`` (``losses``: the per-iteration losses of this call).

    Raises:
        FileNotFoundError: ``resume`` without a checkpoint.
    """
    from tqdm.auto import tqdm

    from avsal.models.checkpoints import save_weights

    info = setup_distributed(cfg.device)
    os.makedirs(os.path.join(run, "checkpoints"), exist_ok=True)
    torch.manual_seed(cfg.seed)
    model = task.build_model()
    if init_fn is not None and not resume:
        init_fn(model)
    model.to(info.device).train()
    if hasattr(task, "optimizer"):  # a task with its own parameter groups (e.g. STAViS)
        optimizer = task.optimizer(model, cfg)
    else:
        optimizer = torch.optim.SGD(param_groups(model, cfg.lr, cfg.lr_mult), lr=cfg.lr, momentum=cfg.momentum,
                                    weight_decay=cfg.weight_decay, nesterov=cfg.nesterov)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(cfg.milestones), cfg.gamma)
    epoch, start_iter, step = 0, 0, 0
    if resume:
        path = os.path.join(run, "checkpoints", "last.pt")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: nothing to resume")
        ck = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        epoch, start_iter, step = ck["epoch"], ck["iter_in_epoch"], ck["step"]
        _set_rng_state(ck["rng"])
    if info.main:
        with open(os.path.join(run, "config.json"), "w") as f:
            json.dump({"task": task.config_dict(), "train": asdict(cfg), "world_size": info.world,
                       "avsal_version": avsal.__version__}, f, indent=2, default=str)
    net = model
    if info.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[info.device.index] if info.device.type == "cuda" else None)
    data = task.dataset()
    logger = _Logger(run, info.main)
    losses: list[float] = []

    def save(tag: str, ep: int, it: int) -> None:
        if not info.main:
            return
        ck = {"model": _unwrap(net).state_dict(), "optimizer": optimizer.state_dict(),
              "scheduler": scheduler.state_dict(), "epoch": ep, "iter_in_epoch": it, "step": step,
              "rng": _rng_state()}
        path = os.path.join(run, "checkpoints", f"{tag}.pt")
        _atomic_save(ck, path)
        _atomic_save(ck, os.path.join(run, "checkpoints", "last.pt"))

    autocast = torch.autocast(info.device.type, dtype=torch.bfloat16) if cfg.bf16 else contextlib.nullcontext()
    stop = False
    while epoch < cfg.epochs and not stop:
        if hasattr(data, "set_epoch"):
            data.set_epoch(epoch)
        batches = epoch_batches(len(data), cfg.batch_size, epoch, cfg.seed, info.rank, info.world)
        loader = DataLoader(data, batch_sampler=batches[start_iter:], num_workers=cfg.workers)
        bar = tqdm(loader, total=len(batches), initial=start_iter, desc=f"{task.name} epoch {epoch + 1}/{cfg.epochs}",
                   disable=not (progress and info.main), leave=False)
        it = start_iter
        for batch in bar:
            t0 = time.perf_counter()
            batch = [b.to(info.device) if isinstance(b, torch.Tensor) else b for b in batch]
            with autocast:
                loss, metrics = task.loss(net, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            it += 1
            step += 1
            value = float(loss.detach())
            losses.append(value)
            bar.set_postfix(loss=f"{value:.4f}")
            logger.log({"step": step, "epoch": epoch, "iter": it, "loss": value,
                        "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - t0,
                        **{k: float(v) for k, v in metrics.items()}})
            if cfg.save_every and step % cfg.save_every == 0:
                save(f"iter_{step:08d}", epoch, it)
            if cfg.max_iters and step >= cfg.max_iters:
                save(f"iter_{step:08d}", epoch, it)
                stop = True
                break
        bar.close()
        if stop:
            break
        epoch += 1
        start_iter = 0
        scheduler.step()
        save(f"epoch_{epoch:03d}", epoch, 0)
    if info.main and not stop:
        m = _unwrap(net)
        save_weights({k: v.detach().cpu() for k, v in m.state_dict().items()}, os.path.join(run, "model.safetensors"),
                     task.name, getattr(m, "config", None) and m.config.to_dict(),
                     provenance={"run": os.path.abspath(run), "epochs": cfg.epochs, "steps": step})
    if info.world > 1:
        dist.barrier()
    return {"step": step, "epoch": epoch, "last_loss": losses[-1] if losses else None, "losses": losses}
