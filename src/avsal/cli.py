"""Command line: ``avsal predict``, ``avsal models``, ``avsal demo``, ``avsal convert-weights``.

One error policy for every command (:func:`main`): exit 0 all done; 1 some input failed (the others
still finished; each failure is one line); 2 bad usage, a bad configuration, or an input/output that
stops the whole command (every :class:`~avsal.errors.AvsalError` that reaches the top: one line
``avsal COMMAND: error: …``, no traceback); 130 interrupted (Ctrl-C: one line; temporary outputs are
removed on the way out).
"""

from __future__ import annotations

import argparse
import json
import sys

from avsal import __version__


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="avsal", description="Audio-visual video saliency prediction.")
    p.add_argument("--version", action="version", version=f"avsal {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    pr = sub.add_parser("predict", help="saliency maps + overlay video for video files or folders",
                        description="Predict saliency maps. Writes OUT/<video stem>/{maps/*.png, saliency.h5, "
                                    "overlay.mp4, meta.json}. A finished video is skipped when its meta.json records "
                                    "the same input SHA-256 and options, else redone; --overwrite redoes it anyway.")
    pr.add_argument("inputs", nargs="+", metavar="INPUT", help="video files or folders of videos")
    pr.add_argument("--out", default="avsal_output", metavar="DIR", help="output folder (default avsal_output)")
    pr.add_argument("--model", default="classic-av", help="model name (see `avsal models`); default classic-av")
    pr.add_argument("--weights", metavar="FILE", help="weights file, for models that need one")
    g = pr.add_mutually_exclusive_group()
    g.add_argument("--every", type=_every_arg, metavar="N", help="predict every N-th frame (N >= 1)")
    g.add_argument("--fps", type=_fps_arg, metavar="F",
                   help="predict F frames per second (middle of each 1/F s; 0 < F <= 1000)")
    pr.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    pr.add_argument("--batch-size", type=int, default=8, metavar="B", help="frames per batch for network models")
    pr.add_argument("--no-overlay", action="store_true", help="do not write overlay.mp4")
    pr.add_argument("--overwrite", action="store_true", help="redo videos whose outputs exist")
    pr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="model config override, JSON value (e.g. --set w_sync=0.3); repeatable")
    pr.add_argument("--shard", metavar="K/N", help="predict only inputs K, K+N, K+2N, … of the sorted list (job "
                    "arrays); under torchrun each rank further takes its share")
    pr.add_argument("--quiet", action="store_true", help="no progress bars")

    sub.add_parser("models", help="list the available models")

    cw = sub.add_parser("convert-weights", help="convert an upstream checkpoint to avsal's safetensors format",
                        description="Map an upstream checkpoint onto avsal's names, check every key and shape, and "
                                    "write OUT.safetensors + OUT.json. Checkpoints are read with "
                                    "torch.load(weights_only=True). `avsal models` lists the convertible names.")
    cw.add_argument("--model", required=True,
                    help="registry name of the network the checkpoint is for (e.g. stanet-sta; see `avsal models`)")
    cw.add_argument("input", metavar="IN", help="upstream checkpoint (.pth, .pth.tar, .pt)")
    cw.add_argument("output", metavar="OUT", help="output .safetensors")
    cw.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="network config field (e.g. --set temporal_stack=\"permute\"); repeatable")

    from avsal.data import command as prepare_command
    from avsal.evaluate import command as evaluate_command
    from avsal.pseudo_gt import command as pseudo_gt_command
    from avsal.train import command as train_command

    prepare_command.add_parser(sub)
    train_command.add_parser(sub)
    pseudo_gt_command.add_parser(sub)
    evaluate_command.add_parser(sub)
    from avsal import pipeline

    pipeline.add_parser(sub)
    from avsal import ablate

    ablate.add_parser(sub)

    de = sub.add_parser("demo", help="make a synthetic audio-visual clip and predict it",
                        description="Writes DIR/demo.mp4 (a disc hopping with beeps, another circling silently), "
                                    "runs `avsal predict` on it and prints where the overlay is.")
    de.add_argument("--out", default="demo_output", metavar="DIR", help="output folder (default demo_output)")
    return p


def _every_arg(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects a whole number >= 1, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def _fps_arg(text: str) -> float:
    from avsal.predict import MAX_SAMPLING_FPS, check_sampling_fps

    try:
        return check_sampling_fps(float(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"expects a number of frames per second in (0, {MAX_SAMPLING_FPS:g}], got {text!r}"
            if "could not convert" in str(e) else str(e)) from None


def _parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def _cmd_predict(args) -> int:
    from avsal.errors import InputError, OutputError
    from avsal.predict import PredictOptions, predict_many

    try:
        from avsal.predict import parse_shard

        opts = PredictOptions(model=args.model, weights=args.weights, every=args.every, fps=args.fps,
                              device=args.device, batch_size=args.batch_size, overlay=not args.no_overlay,
                              overwrite=args.overwrite, model_config=_parse_overrides(args.set),
                              shard=parse_shard(args.shard) if args.shard else None)
        res = predict_many(args.inputs, args.out, opts, progress=not args.quiet,
                           log=lambda m: print(m, file=sys.stderr))
    except (OutputError, InputError, KeyError, ValueError, TypeError) as e:
        print(f"avsal predict: error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2
    n = len(res.done) + len(res.skipped) + len(res.failed)
    print(f"{len(res.done)} done, {len(res.skipped)} skipped, {len(res.failed)} failed (of {n}); outputs in {args.out}",
          file=sys.stderr)
    if res.failed:
        for path, msg in res.failed.items():
            print(f"failed: {msg}", file=sys.stderr)
        return 1
    return 0


def _cmd_models(_args) -> int:
    from avsal.models import list_models

    for m in list_models():
        uses = "predict" if m.video_factory is not None else "network"
        conv = ", convertible" if m.conversion is not None else ""
        print(f"{m.name:16s} {'needs weights' if m.needs_weights else 'no weights   '}  [{uses}{conv}]  "
              f"{m.description}")
    return 0


def _cmd_convert(args) -> int:
    import os

    from avsal.errors import InputError, OutputError
    from avsal.io.write import sha256_file
    from avsal.models.checkpoints import CheckpointError, convert_state_dict, read_checkpoint, save_weights
    from avsal.models.registry import get_entry

    try:
        if not args.output.endswith(".safetensors"):
            raise ValueError("OUT must end with .safetensors")
        cfg = _parse_overrides(args.set)
        try:
            name = get_entry(args.model).name
        except KeyError as e:
            raise ValueError(e.args[0]) from None
        sd, report = convert_state_dict(read_checkpoint(args.input), name, cfg)
        save_weights(sd, args.output, name, cfg,
                     provenance={"source": os.path.basename(args.input), "source_sha256": sha256_file(args.input),
                                 "conversion": report.summary()})
    except (InputError, OutputError, CheckpointError, ValueError) as e:
        print(f"avsal convert-weights: error: {e}", file=sys.stderr)
        return 2
    print(f"{name}: {len(report.mapped)} tensors mapped, {len(report.dropped)} dropped (modules upstream never "
          f"uses), {len(report.unexpected)} unexpected -> {args.output}")
    for k in report.dropped:
        print(f"  dropped     {k}")
    for k in report.unexpected:
        print(f"  unexpected  {k}")
    return 0


def _cmd_demo(args) -> int:
    import os

    from avsal.predict import PredictOptions, predict_many
    from avsal.synth import make_demo_clip

    os.makedirs(args.out, exist_ok=True)
    clip = os.path.join(args.out, "demo.mp4")
    make_demo_clip(clip)
    print(f"demo clip: {clip} (left disc hops with the beeps, right disc circles silently)")
    res = predict_many([clip], os.path.join(args.out, "predictions"), PredictOptions(overwrite=True),
                       progress=False, log=lambda m: print(m, file=sys.stderr))
    if res.failed:
        return 1
    out = os.path.join(args.out, "predictions", "demo")
    print(f"saliency maps: {os.path.join(out, 'maps')}/")
    print(f"overlay video: {os.path.join(out, 'overlay.mp4')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``avsal`` console script; returns the exit code (see the module docstring)."""
    from avsal.errors import EXIT_INTERRUPTED, EXIT_USAGE, AvsalError

    args = _build_parser().parse_args(argv)
    name = " ".join(x for x in (args.command, getattr(args, "pipeline_command", None)) if x)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        print(f"avsal {name}: interrupted (temporary outputs removed; rerun to continue)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except AvsalError as e:
        print(f"avsal {name}: error: {e}", file=sys.stderr)
        return EXIT_USAGE


def _dispatch(args) -> int:
    if args.command == "predict":
        return _cmd_predict(args)
    if args.command == "models":
        return _cmd_models(args)
    if args.command == "demo":
        return _cmd_demo(args)
    if args.command == "convert-weights":
        return _cmd_convert(args)
    if args.command in ("train", "cams"):
        from avsal.train import command as train_command

        return train_command.run(args)
    if args.command == "prepare":
        from avsal.data import command as prepare_command

        return prepare_command.run(args)
    if args.command == "pseudo-gt":
        from avsal.pseudo_gt import command as pseudo_gt_command

        return pseudo_gt_command.run(args)
    if args.command == "pipeline":
        from avsal import pipeline

        return pipeline.run(args)
    if args.command == "evaluate":
        from avsal.evaluate import command as evaluate_command

        return evaluate_command.run(args)
    if args.command == "ablate-audio":
        from avsal import ablate

        return ablate.run(args)
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
