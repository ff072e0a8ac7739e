"""``avsal pipeline weak``: every stage of weakly supervised STANet, in order, skipping finished ones.

prepare (+ the audio-relevance list when ``audio_weights`` are given) → coarse S/SA/ST → coarse CAMs →
crop → fine S/SA/ST → fine CAMs → finalize → STA (``docs/weak_pipeline.md``). With ``audio_weights``
(``vggsound_netvlad.pth.tar``, which holds the VGGSound classifier head) the prepared root gets
``audio_relevance.csv`` (:mod:`avsal.data.relevance`) and SA trains only on the audio-relevant seconds, as
upstream; without them SA trains on every second and its run config says so (``sa_frames``). A stage is
finished when its final file exists (``model.safetensors``, ``cams.csv``, ``boxes.csv``, ``pseudo_gt.csv``);
an interrupted training stage resumes from its last
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
    audio_weights: weights/vggsound_netvlad.pth.tar   # also gives SA's audio-relevance list
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from avsal.errors import ConfigError


@dataclass
class CropConfig:
    """The ``crop:`` section: arguments of :func:`avsal.pseudo_gt.pipeline.crop_stage` (same names and
    defaults; ``tests/test_robust.py`` checks they stay equal)."""

    grid: int = field(default=356, metadata={"min": 1})
    factor: float = field(default=2.0, metadata={"gt": 0})
    box: Literal["upstream", "adaptive"] = "upstream"
    require_all: bool = True
    start: float = field(default=2.0, metadata={"gt": 0})
    step: float = field(default=0.05, metadata={"gt": 0})
    min_size: int = field(default=100, metadata={"min": 1})
    box_window: int | None = field(default=None, metadata={"min": 1})
    eps: float = field(default=1e-4, metadata={"min": 0})
    split: str | None = None
    correct_only: bool = False
    audio: Literal["link", "copy", "reference"] = "link"
    resize: Literal["matlab", "bilinear"] = "matlab"
    overwrite: bool = False
    empty_box: Literal["skip", "full"] = "skip"


@dataclass
class FinalizeConfig:
    """The ``finalize:`` section: arguments of :func:`avsal.pseudo_gt.pipeline.finalize_stage` (same
    names and defaults)."""

    smoothing: bool | None = None
    factor: float | None = field(default=None, metadata={"min": 0})
    variant: Literal["upstream", "sta_trial"] = "upstream"
    require_all: bool = True
    window: int = field(default=5, metadata={"min": 1})
    recursive: bool = True
    frames: Literal["valid", "upstream"] = "valid"
    eps: float | None = field(default=None, metadata={"min": 0})
    grid: int | None = field(default=None, metadata={"min": 1})
    correct_only: bool = False
    resize: Literal["matlab", "bilinear"] = "matlab"
    overwrite: bool = False


Branch = Literal["S", "SA", "ST"]


@dataclass
class PipelineConfig:
    """Settings of the whole pipeline (see the module docstring), checked by :func:`load_config`.

    Attributes:
        work: output folder of every stage.
        videos: input videos folder.
        annotations, splits: AVE annotation file and split folder (AVE mode).
        labels: ``video,label`` CSV (folder mode, instead of annotations/splits).
        jobs: parallel clips in ``prepare``.
        branches: SCAM branches to train (default all three).
        tiny: tiny backbones (tests).
        scam, sta: :class:`~avsal.train.engine.TrainConfig` overrides (every key checked against its fields).
        scam_task, fine_task, sta_task: extra :class:`~avsal.train.tasks.ScamTask` /
            :class:`~avsal.train.tasks.STATask` fields (e.g. ``{"resize": 72, "crop": 64}``, ``{"size": 128}``;
            the fields the pipeline sets itself are refused).
        backbone_weights, audio_weights: pretrained weights for every run; ``audio_weights`` (VGGSound)
            also produces the audio-relevance list that selects SA's training frames.
        audio_relevance: make and use that list when ``audio_weights`` are given (default, upstream).
        crop, finalize: :class:`CropConfig`, :class:`FinalizeConfig`.
        selective_cams: keep only the CAMs of correctly classified frames (upstream).
        progress: progress bars.
    """

    work: str
    videos: str
    annotations: str | None = None
    splits: str | None = None
    labels: str | None = None
    jobs: int = field(default=1, metadata={"min": 1})
    branches: tuple[Branch, ...] = ("S", "SA", "ST")
    tiny: bool = False
    scam: dict = field(default_factory=dict)
    sta: dict = field(default_factory=dict)
    scam_task: dict = field(default_factory=dict)
    fine_task: dict = field(default_factory=dict)
    sta_task: dict = field(default_factory=dict)
    backbone_weights: str | None = None
    audio_weights: str | None = None
    audio_relevance: bool = True
    crop: CropConfig = field(default_factory=CropConfig)
    finalize: FinalizeConfig = field(default_factory=FinalizeConfig)
    selective_cams: bool = True
    progress: bool = True


#: Task fields the pipeline sets itself (not allowed in ``scam_task`` / ``fine_task`` / ``sta_task``).
_SCAM_SET = ("branch", "stage", "data", "tiny")
_STA_SET = ("data", "pseudo_gt", "tiny")


def check_config(raw: Any, source: str | None = None) -> PipelineConfig:
    """Check a config mapping completely, before any stage (the one path of YAML, JSON and Python dicts).

    Raises:
        ConfigError: naming the dotted key (``crop.empty_box``, ``scam.epoch``), the problem and the
            allowed values.
    """
    from avsal.config import from_dict, validate_fields
    from avsal.train.engine import TrainConfig
    from avsal.train.tasks import STATask, ScamTask

    cfg = from_dict(PipelineConfig, raw, source=source)
    if not cfg.branches:
        raise ConfigError("branches", "needs at least one of 'S', 'SA', 'ST'", source)
    if len(set(cfg.branches)) != len(cfg.branches):
        raise ConfigError("branches", f"lists a branch twice: {list(cfg.branches)}", source)
    for name in ("scam", "sta"):
        setattr(cfg, name, validate_fields(TrainConfig, getattr(cfg, name), where=name, source=source))
    for name in ("scam_task", "fine_task"):
        setattr(cfg, name, validate_fields(ScamTask, getattr(cfg, name), where=name, source=source, exclude=_SCAM_SET))
    cfg.sta_task = validate_fields(STATask, cfg.sta_task, where="sta_task", source=source, exclude=_STA_SET)
    if cfg.crop.box_window is not None and cfg.crop.box_window % 2 == 0:
        raise ConfigError("crop.box_window", f"must be odd, got {cfg.crop.box_window}", source)
    if cfg.finalize.window % 2 == 0:
        raise ConfigError("finalize.window", f"must be odd, got {cfg.finalize.window}", source)
    if not cfg.labels and not (cfg.annotations and cfg.splits):
        raise ConfigError("annotations", "AVE mode needs 'annotations' and 'splits' (or give 'labels' for "
                          "folder mode)", source)
    return cfg


def load_config(path: str) -> PipelineConfig:
    """Read and check a YAML (``.yaml``/``.yml``) or JSON pipeline config; relative paths are relative to
    the file. Everything is checked here, before the first stage (:func:`check_config`).

    Raises:
        ConfigError: a syntax error (with its line), unknown keys, missing or bad values (the message names
            the key and the allowed values).
        InputError: the file cannot be read.
    """
    from avsal.errors import InputError

    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise InputError(path, f"config file cannot be read ({e.strerror or e})") from None
    if path.endswith((".yaml", ".yml")):
        import yaml

        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "syntax"
            raise ConfigError(where, f"not valid YAML ({getattr(e, 'problem', None) or e})", path) from None
    else:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"line {e.lineno}, column {e.colno}", f"not valid JSON ({e.msg})", path) from None
    raw = {} if raw is None else raw
    if isinstance(raw, dict):
        base = os.path.dirname(os.path.abspath(path))
        for k in ("work", "videos", "annotations", "splits", "labels", "backbone_weights", "audio_weights"):
            if isinstance(raw.get(k), str):
                raw[k] = os.path.join(base, os.path.expanduser(raw[k]))
    return check_config(raw, source=path)


#: Consecutive pseudo-GT seconds STA training needs: a frame and both neighbours (``STADataset``).
STA_TRIPLET = 3


def seconds_needed(cfg: PipelineConfig) -> int:
    """Consecutive seconds a training clip needs to give STA at least one training triplet.

    STA trains on frames whose pseudo-GT exists for the second itself and both neighbours
    (:data:`STA_TRIPLET` consecutive pseudo-GTs, :class:`avsal.data.datasets.STADataset`). With smoothing
    (the ``upstream`` variant's default) only centres of a full ``finalize.window`` get a map, and
    ``frames: upstream`` keeps only the range of ``CAMsmooth*.m``
    (:func:`avsal.pseudo_gt.fusion.upstream_written`); without smoothing every second with CAMs gets one.
    With the defaults (window 5, frames valid): 7 s.
    """
    from avsal.pseudo_gt.fusion import upstream_written

    f = cfg.finalize
    smoothing = f.smoothing if f.smoothing is not None else f.variant == "upstream"
    h = f.window // 2
    for n in range(1, 10 * f.window + 100):
        if not smoothing:
            written = set(range(n))
        else:
            written = set(range(h, n - h))
            if f.frames == "upstream":
                written &= set(upstream_written(n, f.window))
        if any(all(p + d in written for d in range(STA_TRIPLET)) for p in written):
            return n
    raise ConfigError("finalize.window", f"{f.window} leaves no pseudo-GT for STA")  # pragma: no cover


def check_clip_lengths(prepared: str, cfg: PipelineConfig) -> None:
    """After ``prepare``, the first stage that knows the clips: stop if no training clip is long enough for
    ``finalize`` (:func:`seconds_needed`), instead of failing at the last stage; report the short ones.

    Raises:
        InputError: no training clip has enough consecutive seconds (the message says what to change).
    """
    from avsal.data.datasets import read_manifest
    from avsal.data.layout import MANIFEST_NAME
    from avsal.errors import InputError

    seconds: dict[str, list[int]] = {}
    for r in read_manifest(prepared, split="train"):
        seconds.setdefault(r.clip, []).append(r.second)
    need = seconds_needed(cfg)

    def longest(secs: list[int]) -> int:
        best = run = 0
        prev = None
        for x in sorted(secs):
            run = run + 1 if prev is not None and x == prev + 1 else 1
            best, prev = max(best, run), x
        return best

    runs = {c: longest(v) for c, v in seconds.items()}
    short = sorted(c for c, n in runs.items() if n < need)
    if runs and len(short) == len(runs):
        raise InputError(os.path.join(prepared, MANIFEST_NAME),
                         f"no training clip has the {need} consecutive seconds `pipeline weak` needs (pseudo-GTs "
                         f"for a second and both neighbours, to train STA; finalize.window={cfg.finalize.window}, frames={cfg.finalize.frames!r}); the "
                         f"longest has {max(runs.values())} s. Use longer clips, or a smaller odd finalize.window "
                         "(e.g. finalize: {window: 3})")
    if short:
        _log(f"   {len(short)} of {len(runs)} training clips are shorter than {need} s and give STA no training frame: "
             f"{', '.join(short[:5])}{' …' if len(short) > 5 else ''}")


def _log(msg: str) -> None:
    if os.environ.get("RANK", "0") == "0":
        print(f"[pipeline] {msg}", file=sys.stderr, flush=True)


def run_weak(cfg: "PipelineConfig | dict") -> dict:
    """Run (or continue) the pipeline; returns the paths of every stage's output.

    Args:
        cfg: a :class:`PipelineConfig` or a mapping of its fields; checked completely first
            (:func:`check_config`).

    Raises:
        ConfigError: a bad setting, before any stage.
        InputError / ValueError: from the stages, naming the bad file or option.
    """
    cfg = check_config(asdict(cfg) if isinstance(cfg, PipelineConfig) else cfg)
    from avsal.data.layout import PSEUDO_GT_NAME
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
        main_only(prepare_ave, cfg.videos, cfg.annotations, cfg.splits, paths["prepared"], jobs=cfg.jobs,
                  progress=cfg.progress)

    check_clip_lengths(paths["prepared"], cfg)
    switch_list = None
    if cfg.audio_weights and cfg.audio_relevance:
        from avsal.data.relevance import RELEVANCE_FILE, write_audio_relevance

        switch_list = os.path.join(paths["prepared"], RELEVANCE_FILE)
        _log("1/8 audio-relevance list (VGGSound classifier)")
        if not os.path.exists(switch_list):
            main_only(write_audio_relevance, paths["prepared"], cfg.audio_weights,
                      progress=cfg.progress)
    else:
        _log("1/8 no audio-relevance list (no audio_weights): SA trains on every frame")

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
                           paths["crops"], progress=cfg.progress, **asdict(cfg.crop))
        _log(f"{step}/8 {stage} SCAM: {', '.join(cfg.branches)}")
        extra = cfg.scam_task if stage == "coarse" else cfg.fine_task
        for b in cfg.branches:
            fields = dict(extra)
            if b == "SA" and switch_list:
                fields.setdefault("switch_list", switch_list)
            task = ScamTask(branch=b, stage=stage, data=data, tiny=cfg.tiny, **fields)
            train(task, scam_train_config(b, **cfg.scam), os.path.join(w, "runs", f"{stage}_{b}"))
        _log(f"{step + 1}/8 {stage} CAMs")
        for b in cfg.branches:
            cams(os.path.join(w, "runs", f"{stage}_{b}"), data, os.path.join(w, "cams", f"{stage}_{b}"))
    _log("7/8 finalize pseudo-GT")
    if not os.path.exists(os.path.join(paths["pseudo_gt"], PSEUDO_GT_NAME)):
        main_only(finalize_stage, paths["crops"], {b: os.path.join(w, "cams", f"fine_{b}") for b in cfg.branches},
                       paths["pseudo_gt"], progress=cfg.progress, **asdict(cfg.finalize))
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
    """Exit code 0 done, 2 bad config or input (the AvsalError family is printed by ``avsal.cli.main``)."""
    try:
        run_weak(load_config(args.config))
    except (ValueError, FileNotFoundError) as e:
        print(f"avsal pipeline: error: {e}", file=sys.stderr)
        return 2
    return 0
