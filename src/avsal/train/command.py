"""``avsal train scam|sta|stavis|liu20|vinet|avinet`` and ``avsal cams`` (wired into :mod:`avsal.cli`)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields


def _add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="RUN", help="run folder (checkpoints, logs, config, weights)")
    p.add_argument("--config", metavar="FILE", help="JSON file of TrainConfig / task fields (CLI flags win)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--save-every", type=int, metavar="N", help="checkpoint every N iterations")
    p.add_argument("--max-iters", type=int, metavar="N", help="stop after N iterations (a checkpoint is saved)")
    p.add_argument("--workers", type=int, help="DataLoader workers")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.add_argument("--bf16", action="store_true", default=None, help="bfloat16 autocast")
    p.add_argument("--resume", action="store_true", help="continue from RUN/checkpoints/last.pt")
    p.add_argument("--tiny", action="store_true", default=None, help="tiny backbones (tests, quick trials)")
    p.add_argument("--backbone-weights", metavar="FILE",
                   help="backbone init (STANet: ResNeXt-101 32x8d; STAViS: resnet-50-kinetics.pth)")
    p.add_argument("--audio-weights", metavar="FILE",
                   help="audio init (STANet: vggsound_netvlad.pth.tar; STAViS: soundnet8.pth)")
    p.add_argument("--quiet", action="store_true")


def add_parser(sub) -> None:
    """Add ``train`` (with ``scam`` and ``sta``) and ``cams`` to the ``avsal`` subcommands."""
    tr = sub.add_parser("train", help="train networks (STANet SCAM branches and STA; STAViS; Liu'20)")
    tsub = tr.add_subparsers(dest="train_command", required=True)
    sc = tsub.add_parser("scam", help="train S, SA or ST on category labels (coarse or fine stage)")
    sc.add_argument("--branch", required=True, choices=("S", "SA", "ST"))
    sc.add_argument("--stage", required=True, choices=("coarse", "fine"))
    sc.add_argument("--data", required=True, metavar="ROOT", help="prepared root (crops root for fine)")
    sc.add_argument("--switch-list", metavar="FILE", help="SA: clip,second lines of audio-relevant frames")
    sc.add_argument("--independent-crops", action="store_true", default=None,
                    help="ST: crop the three frames independently, as upstream")
    _add_train_options(sc)
    st = tsub.add_parser("sta", help="train STA on pseudo-GTs")
    st.add_argument("--data", required=True, metavar="ROOT", help="prepared root")
    st.add_argument("--pseudo-gt", required=True, metavar="DIR", help="pseudo-GT folder")
    st.add_argument("--kld", choices=("sample", "batch"), help="KLD normalisation (batch = upstream)")
    _add_train_options(st)
    lq = tsub.add_parser("liu20", help="train Liu et al. ECCV'20 on eye-tracking data in the STAViS layout")
    lq.add_argument("--data", required=True, metavar="ROOT",
                    help="STAViS-layout root (annotations/, video_frames/, video_audio/)")
    lq.add_argument("--dataset", help="dataset folder / name (default MVVA)")
    lq.add_argument("--split", type=int, help="fold-list split (default 1)")
    lq.add_argument("--fold-lists", metavar="DIR", help="fold-list folder (default ROOT/fold_lists)")
    _add_train_options(lq)

    for name, what in (("vinet", "ViNet (visual; DHF1K-layout data)"), ("avinet", "AViNet (audio-visual)")):
        vp = tsub.add_parser(name, help=f"train {what}; upstream recipe: Adam 1e-4, batch 8, 40 epochs, KL loss")
        vp.add_argument("--data", required=True, metavar="ROOT", help="dataset root (see --layout)")
        vp.add_argument("--layout", choices=("dhf1k", "stavis"),
                        help="dhf1k: ROOT/<video>/{images,maps}; stavis: the AV sets (default dhf1k for vinet, "
                             "stavis for avinet)")
        vp.add_argument("--split", type=int, help="fold of the stavis layout (1-3)")
        for term in ("kldiv", "cc", "sim", "l1"):
            vp.add_argument(f"--{term}", action=argparse.BooleanOptionalAction, default=None,
                            help=f"{term} loss term (default: only kldiv)")
        vp.add_argument("--visual-weights", metavar="FILE", help="avinet: ViNet weights for visual_model "
                        "(upstream --load_weight)")
        _add_train_options(vp)
    sv = tsub.add_parser("stavis", help="train STAViS (visual, then audio-visual) on the STAViS release layout")
    sv.add_argument("--variant", required=True, choices=("visual", "av"))
    sv.add_argument("--data", required=True, metavar="STAVIS_ROOT",
                    help="root with video_frames/, video_audio/, annotations/, fold_lists/")
    sv.add_argument("--split", required=True, type=int, choices=(1, 2, 3))
    sv.add_argument("--init", metavar="FILE", help="av: the visual model to start from (upstream "
                    "visual_split<s>_save_60.pth or an avsal visual run's model.safetensors)")
    sv.add_argument("--last-video-silent", action="store_true", default=None,
                    help="upstream defect: zero audio for the last video of every list (parity runs)")
    _add_train_options(sv)

    ca = sub.add_parser("cams", help="class activation maps of a trained SCAM run")
    ca.add_argument("--run", required=True)
    ca.add_argument("--data", required=True, metavar="ROOT")
    ca.add_argument("--split", default="train", choices=("train", "val", "test"))
    ca.add_argument("--out", required=True, metavar="DIR")
    ca.add_argument("--cam-class", default="auto", choices=("auto", "pred", "label"))
    ca.add_argument("--cam-logits", default="auto", choices=("auto", "raw", "fused"),
                    help="logits for pred/prob (auto = upstream: raw for S, fused for SA/ST)")
    ca.add_argument("--all", action="store_true", help="also frames that are misclassified (not selective)")
    ca.add_argument("--quiet", action="store_true")


def _split_config(args, task_fields: set[str]) -> tuple[dict, dict]:
    from avsal.train.engine import TrainConfig

    cfg = {}
    if args.config:
        with open(args.config) as f:
            cfg = json.load(f)
    train_fields = {f.name for f in fields(TrainConfig)}
    cli = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
           "save_every": args.save_every, "max_iters": args.max_iters, "workers": args.workers,
           "device": args.device, "bf16": args.bf16, "tiny": args.tiny}
    cfg.update({k: v for k, v in cli.items() if v is not None})
    unknown = set(cfg) - train_fields - task_fields
    if unknown:
        raise ValueError(f"unknown config field(s): {', '.join(sorted(unknown))}")
    train = {k: v for k, v in cfg.items() if k in train_fields}
    task = {k: v for k, v in cfg.items() if k in task_fields}
    if "seed" in train:
        task["seed"] = train["seed"]
    return train, task


def run(args) -> int:
    """Run ``avsal train …`` or ``avsal cams``; exit code 0 ok, 2 bad input."""
    from avsal.errors import InputError
    from avsal.train.engine import fit
    from avsal.train.tasks import (STATask, ScamTask, load_pretrained, scam_train_config, sta_train_config)

    try:
        if args.command == "cams":
            from avsal.train.cams import compute_cams

            n = compute_cams(args.run, args.data, args.out, args.split, args.cam_class, not args.all,
                             progress=not args.quiet, cam_logits=args.cam_logits)
            print(f"{n} CAMs written to {args.out}", file=sys.stderr)
            return 0
        if args.train_command in ("vinet", "avinet"):
            return _run_vinet(args)
        if args.train_command == "stavis":
            from avsal.models.stavis.training import StavisTask, load_inits, stavis_train_config

            train, task = _split_config(args, set(StavisTask.__dataclass_fields__))
            if args.last_video_silent:
                task["last_video_silent"] = True
            cfg = stavis_train_config(**train)
            task["epochs"] = cfg.epochs
            t = StavisTask(variant=args.variant, data=args.data, split=args.split, **task)

            def init_stavis(model):
                for note in load_inits(model, args.variant, args.backbone_weights, args.init, args.audio_weights):
                    print(note, file=sys.stderr)

            res = fit(t, cfg, args.out, resume=args.resume, progress=not args.quiet, init_fn=init_stavis)
            print(f"{t.name}: {res['step']} iterations, last loss {res['last_loss']}; run folder {args.out}",
                  file=sys.stderr)
            return 0
        if args.train_command == "liu20":
            from avsal.train.liu20 import Liu20Task, liu20_train_config

            train, task = _split_config(args, set(Liu20Task.__dataclass_fields__))
            task.update({k: v for k, v in (("db", args.dataset), ("split", args.split),
                                           ("fold_lists", args.fold_lists)) if v is not None})
            t = Liu20Task(data=args.data, **task)
            res = fit(t, liu20_train_config(**train), args.out, resume=args.resume, progress=not args.quiet)
            print(f"{t.name}: {res['step']} iterations, last loss {res['last_loss']}; run folder {args.out}",
                  file=sys.stderr)
            return 0
        if args.train_command == "scam":
            train, task = _split_config(args, set(ScamTask.__dataclass_fields__))
            if args.switch_list:
                task["switch_list"] = args.switch_list
            if args.independent_crops:
                task["independent_crops"] = True
            t = ScamTask(branch=args.branch, stage=args.stage, data=args.data, **task)
            cfg = scam_train_config(args.branch, **train)
        else:
            train, task = _split_config(args, set(STATask.__dataclass_fields__))
            if args.kld:
                task["kld_normalise"] = args.kld
            t = STATask(data=args.data, pseudo_gt=args.pseudo_gt, **task)
            cfg = sta_train_config(**train)

        def init(model):
            for note in load_pretrained(model, args.backbone_weights, args.audio_weights):
                print(note, file=sys.stderr)

        res = fit(t, cfg, args.out, resume=args.resume, progress=not args.quiet, init_fn=init)
    except (InputError, ValueError, FileNotFoundError) as e:
        print(f"avsal: error: {e}", file=sys.stderr)
        return 2
    print(f"{t.name}: {res['step']} iterations, last loss {res['last_loss']}; run folder {args.out}",
          file=sys.stderr)
    return 0


def _run_vinet(args) -> int:
    """``avsal train vinet|avinet`` (``--backbone-weights`` = S3D_kinetics400.pt, ``--audio-weights`` =
    soundnet8_final.pth or a STAViS checkpoint)."""
    from avsal.models.vinet.init import init_from_files
    from avsal.models.vinet.training import ViNetTask, vinet_train_config
    from avsal.train.engine import fit

    train, task = _split_config(args, set(ViNetTask.__dataclass_fields__))
    task["model"] = args.train_command
    task.setdefault("layout", args.layout or ("dhf1k" if args.train_command == "vinet" else "stavis"))
    if args.split is not None:
        task["split"] = args.split
    losses = dict(task.get("losses", {}))
    losses.update({t: getattr(args, t) for t in ("kldiv", "cc", "sim", "l1") if getattr(args, t) is not None})
    task["losses"] = losses
    t = ViNetTask(data=args.data, **task)
    cfg = vinet_train_config(**train)

    def init(model):
        reports = init_from_files(model, s3d=args.backbone_weights, soundnet=args.audio_weights,
                                  visual=args.visual_weights)
        for part, rep in reports.items():
            if rep is not None:
                print(f"{part}: {len(rep.mapped)} tensors loaded, {len(rep.dropped)} dropped", file=sys.stderr)

    res = fit(t, cfg, args.out, resume=args.resume, progress=not args.quiet, init_fn=init)
    print(f"{t.name}: {res['step']} iterations, last loss {res['last_loss']}; run folder {args.out}",
          file=sys.stderr)
    return 0
