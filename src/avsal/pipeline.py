"""``avsal pipeline weak``: every stage of weakly supervised STANet, in order, skipping finished ones.

prepare → coarse S/SA/ST → coarse CAMs → crop → fine S/SA/ST → fine CAMs → finalize → STA
(``docs/weak_pipeline.md``). A stage is finished when its final file exists (``model.safetensors``,
``cams.csv``, ``boxes.csv``, ``pseudo_gt.csv``); an interrupted training stage resumes from its last
checkpoint. Everything goes under ``work``; the config is written to ``work/pipeline_config.json``.
Under ``torchrun`` the training stages use every process (DDP) and the data stages run on rank 0 while
the others wait.

Config file (YAML or JSON), e.g.::

    work: runs/ave
    videos: data/AVE            # AVE: videos + annotations + splits; or videos + labels (folder mode)
    annotations: data/Annotations.txt
    splits: data/splits
    scam: {epochs: 15}          # TrainConfig fields for the six SCAM runs
    sta: {epochs: 15}           # TrainConfig fields for STA
    backbone_weights: weights/resnext101_32x8d_wsl.pth
    audio_weights: weights/vggsound_netvlad.pth.tar
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field


@dataclass
class PipelineConfig:
    """Settings of the whole pipeline (see the module docstring).

    Attributes:
        work: output folder of every stage.
        videos: input videos folder.
        annotations, splits: AVE annotation file and split folder (AVE mode).
        labels: ``video,label`` CSV (folder mode, instead of annotations/splits).
        jobs: parallel clips in ``prepare``.
        branches: SCAM branches to train (default all three).
        tiny: tiny backbones (tests).
        scam, sta: :class:`~avsal.train.engine.TrainConfig` overrides.
        scam_task, sta_task: extra task fields (e.g. ``{"resize": 72, "crop": 64}``, ``{"size": 128}``).
        backbone_weights, audio_weights: pretrained weights for every run.
        crop, finalize: extra arguments of the pseudo-GT stages.
        selective_cams: keep only the CAMs of correctly classified frames (upstream).
        progress: progress bars.
    """

    work: str
    videos: str
    annotations: str | None = None
    splits: str | None = None
    labels: str | None = None
    jobs: int = 1
    branches: tuple[str, ...] = ("S", "SA", "ST")
    tiny: bool = False
    scam: dict = field(default_factory=dict)
    sta: dict = field(default_factory=dict)
    scam_task: dict = field(default_factory=dict)
    fine_task: dict = field(default_factory=dict)
    sta_task: dict = field(default_factory=dict)
    backbone_weights: str | None = None
    audio_weights: str | None = None
    crop: dict = field(default_factory=dict)
    finalize: dict = field(default_factory=dict)
    selective_cams: bool = True
    progress: bool = True


def load_config(path: str) -> PipelineConfig:
    """Read a YAML (``.yaml``/``.yml``) or JSON pipeline config; relative paths are relative to the file.

    Raises:
        ValueError: unknown keys or missing required ones (the message names them).
    """
    with open(path) as f:
        if path.endswith((".yaml", ".yml")):
            import yaml

            raw = yaml.safe_load(f) or {}
        else:
            raw = json.load(f)
    known = set(PipelineConfig.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    base = os.path.dirname(os.path.abspath(path))
    for k in ("work", "videos", "annotations", "splits", "labels", "backbone_weights", "audio_weights"):
        if raw.get(k) is not None:
            raw[k] = os.path.join(base, os.path.expanduser(str(raw[k])))
    try:
        return PipelineConfig(**raw)
    except TypeError as e:
        raise ValueError(f"{path}: {e}") from None


def _log(msg: str) -> None:
    if os.environ.get("RANK", "0") == "0":
        print(f"[pipeline] {msg}", file=sys.stderr, flush=True)


def run_weak(cfg: PipelineConfig) -> dict:
    """Run (or continue) the pipeline; returns the paths of every stage's output.

    Raises:
        InputError / ValueError: from the stages, naming the bad file or option.
    """
    from avsal.data.prepare import prepare_ave, prepare_folder
    from avsal.pseudo_gt.pipeline import crop_stage, finalize_stage
    from avsal.train.cams import compute_cams
    from avsal.train.engine import fit
    from avsal.train.tasks import STATask, ScamTask, load_pretrained, scam_train_config, sta_train_config

    from avsal.train.engine import setup_distributed

    info = setup_distributed(cfg.scam.get("device", "auto"))

    def main_only(fn, *a, **kw):
        """Data stages run on rank 0 only; the other processes wait (under torchrun)."""
        if info.main:
            fn(*a, **kw)
        if info.world > 1:
            import torch.distributed as dist

            dist.barrier()

    from avsal.io.write import ensure_writable_dir

    w = ensure_writable_dir(cfg.work)
    if info.main:
        with open(os.path.join(w, "pipeline_config.json"), "w") as f:
            json.dump(asdict(cfg), f, indent=2)
    paths = {"prepared": os.path.join(w, "prepared"), "crops": os.path.join(w, "crops"),
             "pseudo_gt": os.path.join(w, "pseudo_gt"), "sta": os.path.join(w, "runs", "sta")}

    _log("1/8 prepare")
    if cfg.labels:
        main_only(prepare_folder, cfg.videos, cfg.labels, paths["prepared"], jobs=cfg.jobs, progress=cfg.progress)
    else:
        if not (cfg.annotations and cfg.splits):
            raise ValueError("AVE mode needs 'annotations' and 'splits' (or give 'labels' for folder mode)")
        main_only(prepare_ave, cfg.videos, cfg.annotations, cfg.splits, paths["prepared"], jobs=cfg.jobs,
                  progress=cfg.progress)

    def train(task, tcfg, run):
        if os.path.exists(os.path.join(run, "model.safetensors")):
            _log(f"   {os.path.relpath(run, w)}: done, skipped")
            return
        resume = os.path.exists(os.path.join(run, "checkpoints", "last.pt"))
        _log(f"   {os.path.relpath(run, w)}: {'resuming' if resume else 'training'}")
        fit(task, tcfg, run, resume=resume, progress=cfg.progress,
            init_fn=lambda m: load_pretrained(m, cfg.backbone_weights, cfg.audio_weights))

    def cams(run, data, out):
        if os.path.exists(os.path.join(out, "cams.csv")):
            _log(f"   {os.path.relpath(out, w)}: done, skipped")
            return
        main_only(compute_cams, run, data, out, split="train", selective=cfg.selective_cams, progress=cfg.progress)

    for stage, data, step in (("coarse", paths["prepared"], 2), ("fine", paths["crops"], 5)):
        if stage == "fine":
            _log("4/8 crop")
            if not os.path.exists(os.path.join(paths["crops"], "boxes.csv")):
                main_only(crop_stage, paths["prepared"], {b: os.path.join(w, "cams", f"coarse_{b}") for b in cfg.branches},
                           paths["crops"], progress=cfg.progress, **cfg.crop)
        _log(f"{step}/8 {stage} SCAM: {', '.join(cfg.branches)}")
        extra = cfg.scam_task if stage == "coarse" else cfg.fine_task
        for b in cfg.branches:
            task = ScamTask(branch=b, stage=stage, data=data, tiny=cfg.tiny, **extra)
            train(task, scam_train_config(b, **cfg.scam), os.path.join(w, "runs", f"{stage}_{b}"))
        _log(f"{step + 1}/8 {stage} CAMs")
        for b in cfg.branches:
            cams(os.path.join(w, "runs", f"{stage}_{b}"), data, os.path.join(w, "cams", f"{stage}_{b}"))
    _log("7/8 finalize pseudo-GT")
    if not os.path.exists(os.path.join(paths["pseudo_gt"], "pseudo_gt.csv")):
        main_only(finalize_stage, paths["crops"], {b: os.path.join(w, "cams", f"fine_{b}") for b in cfg.branches},
                       paths["pseudo_gt"], progress=cfg.progress, **cfg.finalize)
    _log("8/8 STA")
    train(STATask(data=paths["prepared"], pseudo_gt=paths["pseudo_gt"], tiny=cfg.tiny, **cfg.sta_task),
          sta_train_config(**cfg.sta), paths["sta"])
    _log(f"done: STA weights in {os.path.join(paths['sta'], 'model.safetensors')}")
    return paths


def add_parser(sub) -> None:
    """Add ``pipeline weak`` to the ``avsal`` subcommands."""
    p = sub.add_parser("pipeline", help="run a whole multi-stage pipeline")
    ps = p.add_subparsers(dest="pipeline_command", required=True)
    wk = ps.add_parser("weak", help="weakly supervised STANet: prepare → SCAM → pseudo-GT → STA")
    wk.add_argument("--config", required=True, metavar="FILE", help="YAML or JSON (see avsal.pipeline)")


def run(args) -> int:
    """Exit code 0 done, 2 bad config or input."""
    from avsal.errors import InputError

    try:
        run_weak(load_config(args.config))
    except (InputError, ValueError, FileNotFoundError) as e:
        print(f"avsal pipeline: error: {e}", file=sys.stderr)
        return 2
    return 0
