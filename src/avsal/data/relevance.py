"""Audio-relevance ("switch") list of a prepared root: which seconds SA trains on.

Upstream STANet (``VGGClssfication/classification.py`` in Full-Adder/STANet_modify; ``docs/weak_pipeline.md``,
"Audio-relevance list") runs the VGGSound classifier — ResNet-18 + NetVLAD with its 309-way head ``fc_``,
the weights ``vggsound_netvlad.pth.tar`` — on each second's 81×199 audio features, takes the arg-max of
the softmax, and calls the second audio-relevant when that VGGSound class name contains the keyword of the
clip's AVE category (a substring test). SA (``SA/utils/LoadData.py``) then trains only on those seconds.

Data shipped with avsal (package data, read with :mod:`importlib.resources`):

* ``vggsound_stat.csv``: the VGGSound class list, ``data/stat.csv`` of hche11/VGGSound (commit 9bbc749;
  code MIT, dataset CC BY 4.0, Chen et al., "VGGSound", ICASSP 2020); class index = position in the
  **sorted** names, as VGGSound's ``test.py`` and upstream's ``classification.py`` number them;
* ``ave_vggsound_keywords.json``: AVE category → keyword (12 hand-made, the lowercased name otherwise).
  A category that is not in the table (folder mode) uses its lowercased name.

Output: ``ROOT/audio_relevance.csv`` with the columns :data:`COLUMNS`, one row per manifest row, and
``ROOT/audio_relevance_config.json``; :func:`read_relevant` gives the ``(clip, second)`` pairs to keep.
"""

from __future__ import annotations

import csv
import json
import os
from functools import lru_cache
from importlib import resources

import numpy as np

from avsal.errors import InputError

#: Columns of ``audio_relevance.csv``.
COLUMNS = ("clip", "second", "class_name", "keyword", "vggsound_class", "vggsound_prob", "relevant")
#: File name of the list inside a prepared root.
RELEVANCE_FILE = "audio_relevance.csv"


@lru_cache(maxsize=1)
def vggsound_classes() -> tuple[str, ...]:
    """The 309 VGGSound class names in classifier order (sorted), from the shipped ``vggsound_stat.csv``."""
    text = resources.files("avsal.data").joinpath("vggsound_stat.csv").read_text(encoding="utf-8")
    return tuple(sorted(row[0] for row in csv.reader(text.splitlines()) if row))


@lru_cache(maxsize=1)
def ave_keywords() -> dict[str, str]:
    """AVE category → keyword, from the shipped ``ave_vggsound_keywords.json``."""
    text = resources.files("avsal.data").joinpath("ave_vggsound_keywords.json").read_text(encoding="utf-8")
    return dict(json.loads(text)["keywords"])


def keyword_of(class_name: str, table: dict[str, str] | None = None) -> str:
    """The keyword of a category: the table's entry, else the lowercased name."""
    table = ave_keywords() if table is None else table
    return table.get(class_name, class_name.lower())


def is_relevant(vggsound_class: str, class_name: str, table: dict[str, str] | None = None) -> bool:
    """Whether a predicted VGGSound class name contains the category's keyword (upstream's ``str.find``)."""
    return keyword_of(class_name, table) in vggsound_class


def load_vggsound_classifier(path: str, tiny: bool | None = None):
    """The VGGSound audio classifier (:class:`~avsal.models.backbones.AudioResNet` with its ``fc_``) from
    ``vggsound_netvlad.pth.tar`` (or any checkpoint with ``audnet.*`` keys and ``audnet.fc_``), in eval mode.

    Args:
        path: the checkpoint (read with ``weights_only=True``).
        tiny: tiny network (tests); ``None``: decided by the width of ``conv1`` in the file.

    Raises:
        InputError: unreadable file, no ``fc_`` head, or keys/shapes that do not fit.
    """
    import torch

    from avsal.models.backbones import AudioResNet
    from avsal.models.checkpoints import read_checkpoint
    from avsal.models.checkpoints import CheckpointError, convert_state_dict, unwrap_state_dict

    obj = read_checkpoint(path)
    try:
        raw = unwrap_state_dict(obj)
        if tiny is None:
            conv1 = raw.get("audnet.conv1.weight")
            tiny = conv1 is not None and conv1.shape[0] == AudioResNet(tiny=True, num_classes=0).conv1.out_channels
        trunk, _ = convert_state_dict(obj, "audio", {"tiny": tiny})
    except CheckpointError as e:
        raise InputError(path, str(e)) from None
    head = {k.split("fc_.", 1)[1]: v for k, v in raw.items() if k.startswith("audnet.fc_.")}
    n = len(vggsound_classes())
    if set(head) != {"weight", "bias"}:
        raise InputError(path, "has no VGGSound classifier head (audnet.fc_.weight / audnet.fc_.bias)")
    net = AudioResNet(tiny=tiny, num_classes=n)
    if tuple(head["weight"].shape) != (n, net.out_dim):
        raise InputError(path, f"classifier head is {tuple(head['weight'].shape)}, expected ({n}, {net.out_dim})")
    with torch.no_grad():
        net.load_state_dict({**trunk, **{f"fc_.{k}": v for k, v in head.items()}}, strict=True)
    return net.eval()


def write_audio_relevance(root: str | os.PathLike, weights: str, tiny: bool | None = None, batch_size: int = 32,
                          device: str = "cpu", progress: bool = True) -> str:
    """Classify every second of a prepared root and write ``ROOT/audio_relevance.csv`` (all splits).

    Args:
        root: prepared root (``manifest.csv``, ``audio/``).
        weights: ``vggsound_netvlad.pth.tar``.
        tiny: tiny classifier (tests); ``None``: from the file (:func:`load_vggsound_classifier`).
        batch_size: seconds per forward pass.
        device: torch device.
        progress: tqdm bar.

    Returns:
        Path of the list.

    Raises:
        InputError: no manifest, unreadable features or weights.
    """
    import torch
    from tqdm.auto import tqdm

    from avsal.data.layout import MANIFEST_NAME, read_manifest
    from avsal.io.audio import read_features_h5

    root = os.fspath(root)
    rows = read_manifest(root)
    if not rows:
        raise InputError(os.path.join(root, MANIFEST_NAME), "lists no seconds")
    net = load_vggsound_classifier(weights, tiny).to(device)
    names = vggsound_classes()
    table = ave_keywords()
    out = []
    with torch.no_grad():
        for i in tqdm(range(0, len(rows), batch_size), desc="audio relevance", disable=not progress, leave=False):
            chunk = rows[i:i + batch_size]
            x = np.stack([read_features_h5(os.path.join(root, r.audio)).reshape(81, 199) for r in chunk])
            prob = torch.softmax(net(torch.from_numpy(x)[:, None].to(device)).float(), 1).cpu()
            p, idx = prob.max(1)
            for r, pi, ci in zip(chunk, p.tolist(), idx.tolist()):
                label = names[ci]
                out.append({"clip": r.clip, "second": r.second, "class_name": r.class_name,
                            "keyword": keyword_of(r.class_name, table), "vggsound_class": label,
                            "vggsound_prob": f"{pi:.6f}", "relevant": int(is_relevant(label, r.class_name, table))})
    path = os.path.join(root, RELEVANCE_FILE)
    tmp = path + ".partial"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(COLUMNS))
        w.writeheader()
        w.writerows(out)
    os.replace(tmp, path)
    with open(os.path.join(root, "audio_relevance_config.json"), "w") as f:
        json.dump({"weights": os.path.abspath(weights), "tiny": bool(net.out_dim != 8192), "seconds": len(out),
                   "relevant": sum(r["relevant"] for r in out),
                   "rule": "relevant = keyword of the AVE category in the arg-max VGGSound class name"}, f, indent=2)
    return path


def read_relevant(path: str | os.PathLike) -> set[tuple[str, int]]:
    """``(clip, second)`` pairs to train SA on, from ``audio_relevance.csv`` (rows with ``relevant`` 1) or
    from a plain list of ``clip,second`` lines (every line kept).

    Raises:
        InputError: missing file or malformed line.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(path, "audio-relevance list not found")
    with open(path, newline="") as f:
        lines = [row for row in csv.reader(f) if row]
    if lines and lines[0][:2] == ["clip", "second"]:
        head = lines[0]
        keep = head.index("relevant") if "relevant" in head else None
        lines = [r for r in lines[1:] if keep is None or r[keep].strip() == "1"]
    try:
        return {(r[0].strip(), int(r[1])) for r in lines}
    except (IndexError, ValueError):
        raise InputError(path, "expected clip,second rows") from None
