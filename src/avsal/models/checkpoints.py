"""Reading and writing weights safely.

* Every PyTorch checkpoint is read with ``torch.load(..., weights_only=True)``: no pickled code is ever
  executed. A checkpoint that needs arbitrary Python objects is refused with a message saying so.
* avsal's own format is ``NAME.safetensors`` plus ``NAME.json`` beside it (model name, network config,
  provenance: source file and its SHA-256, conversion report, avsal version).
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile

import torch

import avsal
from avsal.errors import InputError, OutputError
from avsal.models.stanet.convert import CheckpointError, ConversionReport, convert_upstream_state_dict


def read_checkpoint(path: str | os.PathLike):
    """Load a ``.pth`` / ``.pt`` / ``.tar`` / ``.safetensors`` file without executing pickled code.

    Returns:
        The loaded object (a dict of tensors, possibly nested); for safetensors, a flat dict.

    Raises:
        InputError: missing file, not a checkpoint, or a pickle that needs arbitrary objects.
    """
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
        raise InputError(path, "the checkpoint contains pickled Python objects besides tensors, and avsal never "
                         "executes pickled code (torch.load weights_only=True). Re-save only its state_dict "
                         f"(torch.save(ckpt['state_dict'], ...)) in a trusted environment. Details: "
                         f"{str(e).splitlines()[0]}") from None
    except Exception as e:
        raise InputError(path, f"not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from None


def sidecar_path(weights_path: str | os.PathLike) -> str:
    """``X.safetensors`` → ``X.json``."""
    base, _ = os.path.splitext(os.fspath(weights_path))
    return base + ".json"


def save_weights(state_dict: dict[str, torch.Tensor], path: str | os.PathLike, model_name: str,
                 config: dict | None = None, provenance: dict | None = None) -> None:
    """Write avsal's format: ``path`` (safetensors) and its JSON sidecar, each atomically.

    Raises:
        OutputError: the folder cannot be written.
    """
    from safetensors.torch import save_file

    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    meta = {"format": "avsal-weights-1", "model": model_name, "config": config or {},
            "provenance": provenance or {}, "avsal_version": avsal.__version__}
    try:
        tensors = {k: v.detach().contiguous() for k, v in state_dict.items()}
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".safetensors.partial")
        os.close(fd)
        save_file(tensors, tmp, metadata={"model": model_name, "config": json.dumps(config or {})})
        os.replace(tmp, path)
        side = sidecar_path(path)
        with open(side + ".partial", "w") as f:
            json.dump(meta, f, indent=2)
            f.write("\n")
        os.replace(side + ".partial", side)
    except OSError as e:
        raise OutputError(path, f"cannot write weights ({e.strerror or e})") from None


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
                        ) -> tuple[dict[str, torch.Tensor], dict, ConversionReport | None]:
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
        sd, report = convert_upstream_state_dict(obj, model_name, config)
    except CheckpointError as e:
        raise InputError(path, str(e)) from None
    return sd, dict(config or {}), report
