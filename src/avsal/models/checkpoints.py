"""Reading, converting and writing weights safely: the one checkpoint engine of every model family.

* Every PyTorch checkpoint is read with ``torch.load(..., weights_only=True)``: no pickled code is ever
  executed. A checkpoint that needs arbitrary Python objects is refused with a message saying so.
* Upstream checkpoints are mapped onto avsal's networks by :func:`convert_state_dict`, driven by each
  family's :class:`ConversionRules` (registered with the model): unwrap (``module.`` prefixes, nested
  ``state_dict`` / ``model_state_dict`` / ``model``; non-tensor entries such as ``arch``, ``epoch`` or
  optimizer states are ignored), ordered renaming, knowingly dropped keys, per-key tensor transforms, and a
  :class:`ConversionReport` (mapped, dropped, unexpected, missing, mis-shaped with both shapes). The load
  is strict: a missing or mis-shaped key raises :class:`CheckpointError` with the report.
* avsal's own format is ``NAME.safetensors`` plus ``NAME.json`` beside it (model name, network config,
  provenance: source file and its SHA-256, conversion report, avsal version).

torch is imported inside the functions, so that the registry (which holds :class:`ConversionRules`) stays
light. The rules of each family live in its package (e.g. ``avsal/models/stanet/convert.py``); see
``docs/models.md``.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import avsal
from avsal.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["CheckpointError", "ConversionReport", "ConversionRules", "convert_state_dict", "load_network",
           "load_state_dict_for", "read_checkpoint", "read_sidecar", "save_weights", "sidecar_path",
           "unwrap_state_dict"]


class CheckpointError(ValueError):
    """A checkpoint does not fit the network (missing key, wrong shape, unknown format).

    Attributes:
        report: the :class:`ConversionReport` so far (``None`` when no conversion started).
    """

    def __init__(self, message: str, report: "ConversionReport | None" = None):
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class ConversionRules:
    """How one family's upstream checkpoints map onto an avsal network.

    Attributes:
        rename: ordered ``(regex, replacement)`` pairs; the regex is matched at the start of the upstream
            key (after unwrapping) and the first match wins (``re.sub`` semantics, one substitution).
        dropped: regexes of upstream keys dropped knowingly (modules upstream defines but never uses);
            reported as *dropped*.
        transforms: ``(regex on the avsal key, fn)`` pairs applied after renaming, e.g. a transpose of the
            last two axes between a ``(k, 1)`` and a ``(1, k)`` kernel layout.
        network: ``network(**cfg)`` → the target ``torch.nn.Module`` (built on the meta device for its shapes).
        source: one line on what the rules convert (for messages and ``avsal convert-weights``).
    """

    rename: tuple[tuple[str, str], ...]
    dropped: tuple[str, ...] = ()
    transforms: tuple[tuple[str, Callable], ...] = ()
    network: Callable | None = None
    source: str = ""


@dataclass
class ConversionReport:
    """Accounting of a conversion.

    Attributes:
        mapped: ``(upstream key, avsal key)`` pairs.
        dropped: upstream keys of modules upstream never uses.
        unexpected: upstream keys no rule knows (not loaded).
        missing: avsal keys the checkpoint does not provide.
        mismatched: ``(upstream key, avsal key, checkpoint shape, network shape)``.
    """

    mapped: list[tuple[str, str]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, str, tuple, tuple]] = field(default_factory=list)

    def summary(self) -> dict:
        """JSON-ready counts and the non-mapped keys."""
        return {"mapped": len(self.mapped), "dropped": len(self.dropped), "unexpected": len(self.unexpected),
                "missing": len(self.missing), "mismatched": len(self.mismatched),
                "dropped_keys": self.dropped, "unexpected_keys": self.unexpected, "missing_keys": self.missing,
                "mismatched_keys": [list(m) for m in self.mismatched]}


def unwrap_state_dict(obj) -> "dict[str, torch.Tensor]":
    """The tensor dict inside a loaded checkpoint, with DataParallel ``module.`` prefixes removed.

    Accepts a bare state dict or one nested under ``state_dict`` / ``model_state_dict`` / ``model``
    (upstream ``save_checkpoint`` files, the VGGSound file). Entries that are not tensors (``arch``,
    ``epoch``, optimizer states) are ignored.

    Raises:
        CheckpointError: no tensor dictionary found.
    """
    import torch

    for _ in range(3):
        if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            for k in ("state_dict", "model_state_dict", "model"):
                if isinstance(obj.get(k), dict):
                    obj = obj[k]
                    break
            else:
                break
    if not isinstance(obj, dict) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError("no state_dict of tensors found in the checkpoint")
    out = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            continue
        while k.startswith("module."):
            k = k[len("module."):]
        out[k] = v
    return out


def _rules_for(model_name: str) -> "tuple[str, ConversionRules]":
    from avsal.models.registry import get_entry, list_models

    try:
        entry = get_entry(model_name)
    except KeyError:
        entry = None
    if entry is None or entry.conversion is None:
        names = ", ".join(e.name for e in list_models() if e.conversion is not None)
        raise CheckpointError(f"unknown model {model_name!r} for conversion; convertible: {names}")
    return entry.name, entry.conversion


def convertible_models() -> list[str]:
    """Registry names that upstream checkpoints convert to."""
    from avsal.models.registry import list_models

    return [e.name for e in list_models() if e.conversion is not None]


def target_shapes(model_name: str, config: dict | None = None) -> "dict[str, torch.Size]":
    """Parameter and buffer shapes of the registered network ``model_name`` (built on the meta device).

    Args:
        model_name: a registered name with :class:`ConversionRules`.
        config: the network's config fields (e.g. ``{"tiny": True}``).

    Returns:
        ``{avsal key: torch.Size}`` of every parameter and buffer.

    Raises:
        CheckpointError: the name has no conversion rules, or its rules name no network.
    """
    import torch

    name, rules = _rules_for(model_name)
    if rules.network is None:
        raise CheckpointError(f"{name}: its conversion rules name no network")
    with torch.device("meta"):
        net = rules.network(**dict(config or {}))
    return {k: v.shape for k, v in net.state_dict().items()}


def convert_state_dict(state_dict, model_name: str, config: dict | None = None, partial: bool = False
                       ) -> "tuple[dict[str, torch.Tensor], ConversionReport]":
    """Rename an upstream checkpoint's keys to avsal's and check them against the network (the one engine).

    Args:
        state_dict: a loaded checkpoint (bare or nested, with or without ``module.``; see
            :func:`unwrap_state_dict`).
        model_name: a registered name with conversion rules (``avsal convert-weights --model NAME``).
        config: fields of the target network's config (e.g. ``tiny``).
        partial: allow avsal keys that the checkpoint does not provide (e.g. the heads, when a
            backbone-only file initialises a full network); they are listed in ``report.missing``.

    Returns:
        ``(state_dict, report)``: avsal-named tensors (the same objects unless a transform applies) and the
        accounting.

    Raises:
        CheckpointError: unknown model name, keys missing (unless ``partial``), a key that maps to nothing
            in the network, or shape mismatches (the message names the keys and both shapes; the exception
            carries the report).
    """
    name, rules = _rules_for(model_name)
    sd = unwrap_state_dict(state_dict)
    renames = [(re.compile("^" + pat), rep) for pat, rep in rules.rename]
    dropped = [re.compile("^" + pat) for pat in rules.dropped]
    transforms = [(re.compile(pat), fn) for pat, fn in rules.transforms]
    report = ConversionReport()
    out: dict = {}
    source: dict[str, str] = {}
    for key, value in sd.items():
        if any(d.match(key) for d in dropped):
            report.dropped.append(key)
            continue
        for pat, rep in renames:
            if pat.match(key):
                new = pat.sub(rep, key, count=1)
                for tpat, fn in transforms:
                    if tpat.search(new):
                        value = fn(value)
                out[new] = value
                source[new] = key
                report.mapped.append((key, new))
                break
        else:
            report.unexpected.append(key)
    target = target_shapes(name, config)
    stray = [n for n in out if n not in target]
    if stray:
        raise CheckpointError(f"{name}: checkpoint key {source[stray[0]]!r} maps to {stray[0]!r}, which the network "
                              f"does not have" + (f" (and {len(stray) - 1} more)" if len(stray) > 1 else ""), report)
    for new, value in out.items():
        if tuple(value.shape) != tuple(target[new]):
            report.mismatched.append((source[new], new, tuple(value.shape), tuple(target[new])))
    report.missing = [k for k in target if k not in out]
    if report.mismatched:
        src, new, a, b = report.mismatched[0]
        more = f" (and {len(report.mismatched) - 1} more)" if len(report.mismatched) > 1 else ""
        raise CheckpointError(f"{name}: shape mismatch for {src!r} -> {new!r}: checkpoint {a}, network {b}{more}",
                              report)
    if report.missing and not partial:
        more = f" (and {len(report.missing) - 5} more)" if len(report.missing) > 5 else ""
        raise CheckpointError(f"{name}: checkpoint lacks {len(report.missing)} keys the network needs, e.g. "
                              f"{', '.join(report.missing[:5])}{more}", report)
    return out, report


def read_checkpoint(path: str | os.PathLike):
    """Load a ``.pth`` / ``.pt`` / ``.tar`` / ``.safetensors`` file without executing pickled code.

    Returns:
        The loaded object (a dict of tensors, possibly nested); for safetensors, a flat dict.

    Raises:
        InputError: missing file, not a checkpoint, or a pickle that needs arbitrary objects.
    """
    import torch

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(path, "weights file not found")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except Exception as e:
            raise InputError(path, f"not a readable safetensors file ({e})") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message advises retrying with weights_only=False (running the file's code): never repeat it.
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
        if found is None:
            raise InputError(path, "not a checkpoint (neither a PyTorch file of tensors nor safetensors)") from None
        raise InputError(path, f"the checkpoint contains pickled Python objects besides tensors ({found.group(1)}), "
                         "and avsal never executes pickled code (torch.load weights_only=True). Re-save only its "
                         "state_dict (torch.save(ckpt['state_dict'], ...)) in a trusted environment") from None
    except Exception:
        raise InputError(path, "not a checkpoint (neither a PyTorch file of tensors nor safetensors; "
                         "truncated or corrupt?)") from None


def sidecar_path(weights_path: str | os.PathLike) -> str:
    """``X.safetensors`` → ``X.json``."""
    base, _ = os.path.splitext(os.fspath(weights_path))
    return base + ".json"


def save_weights(state_dict: "dict[str, torch.Tensor]", path: str | os.PathLike, model_name: str,
                 config: dict | None = None, provenance: dict | None = None) -> None:
    """Write avsal's format: ``path`` (safetensors) and its JSON sidecar, each atomically.

    Raises:
        OutputError: the folder cannot be written.
    """
    from safetensors.torch import save_file

    from avsal.io.write import atomic_file, write_json_atomic

    path = os.fspath(path)
    meta = {"format": "avsal-weights-1", "model": model_name, "config": config or {},
            "provenance": provenance or {}, "avsal_version": avsal.__version__}
    tensors = {k: v.detach().contiguous() for k, v in state_dict.items()}
    with atomic_file(path) as tmp:
        save_file(tensors, tmp, metadata={"model": model_name, "config": json.dumps(config or {}, sort_keys=True)})
        _canonical_header(tmp)
    write_json_atomic(sidecar_path(path), meta)


def _canonical_header(path: str) -> None:
    """Sort the ``__metadata__`` keys of a safetensors header in place, so that identical weights give
    identical bytes (the writer stores the metadata from a hash map, in an order that changes from one
    process to the next). The header keeps its length (same JSON, other key order)."""
    with open(path, "r+b") as f:
        n = int.from_bytes(f.read(8), "little")
        raw = f.read(n)
        header = json.loads(raw)
        meta = header.get("__metadata__")
        if not meta:
            return
        header["__metadata__"] = dict(sorted(meta.items()))
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        if len(text) > n:  # pragma: no cover - the same JSON never grows; keep the file as written
            return
        f.seek(8)
        f.write(text + b" " * (n - len(text)))


def read_sidecar(weights_path: str | os.PathLike) -> dict:
    """The JSON beside a ``.safetensors`` file, or the model/config stored in its header, or ``{}``."""
    side = sidecar_path(weights_path)
    if os.path.isfile(side):
        with open(side) as f:
            return json.load(f)
    try:
        from safetensors import safe_open

        with safe_open(os.fspath(weights_path), "pt") as f:
            md = f.metadata() or {}
        return {"model": md.get("model"), "config": json.loads(md.get("config", "{}"))}
    except Exception:
        return {}


def load_state_dict_for(model_name: str, path: str | os.PathLike, config: dict | None = None
                        ) -> "tuple[dict[str, torch.Tensor], dict, ConversionReport | None]":
    """avsal-named weights for a network from an avsal ``.safetensors`` or an upstream checkpoint.

    Args:
        model_name: registry name (``stanet-sta``, ...).
        path: the weights file.
        config: network config overrides; for avsal files, the sidecar's config is the default.

    Returns:
        ``(state_dict, config, report)``; ``report`` is ``None`` for avsal files.

    Raises:
        InputError: unreadable file, a file made for another model, or a checkpoint that does not fit
            (missing keys or shape mismatch, named in the message).
    """
    path = os.fspath(path)
    obj = read_checkpoint(path)
    if path.endswith(".safetensors"):
        meta = read_sidecar(path)
        if meta.get("model") and meta["model"] != model_name:
            raise InputError(path, f"holds weights for {meta['model']}, not {model_name}")
        cfg = {**(meta.get("config") or {}), **(config or {})}
        return obj, cfg, None
    try:
        sd, report = convert_state_dict(obj, model_name, config)
    except CheckpointError as e:
        raise InputError(path, str(e)) from None
    return sd, dict(config or {}), report


def load_network(model_name: str, build: Callable, weights: str | os.PathLike, config: dict | None = None):
    """Build a network and load weights into it strictly (what every family's factory calls).

    The network is built on the meta device (no memory is spent on random initialisation) and the
    checkpoint's tensors are assigned to it.

    Args:
        model_name: registry name the weights are for.
        build: ``build(**cfg)`` → the ``torch.nn.Module``.
        weights: avsal ``.safetensors`` (its sidecar config is the default config) or an upstream checkpoint
            (converted by :func:`convert_state_dict`).
        config: network config overrides.

    Returns:
        The network on the CPU with the weights loaded (in training mode, as ``nn.Module`` builds it).

    Raises:
        InputError: unreadable file, a file made for another model, or a checkpoint that does not fit.
    """
    import torch

    sd, net_cfg, _report = load_state_dict_for(model_name, weights, config)
    with torch.device("meta"):
        net = build(**net_cfg)
    try:
        net.load_state_dict(sd, strict=True, assign=True)
    except RuntimeError as e:
        raise InputError(weights, f"does not fit {model_name}: {str(e).splitlines()[0]}") from None
    return net
