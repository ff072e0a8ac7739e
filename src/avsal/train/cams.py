"""Class activation maps of a trained SCAM branch: ``avsal cams`` (upstream S/SA/ST ``test.py``).

Per frame: the branch's raw and fused class maps, ``att = relu((map_raw + map_fused) / 2)[class]``, divided by
its max, ×255 → uint8, resized to the network input size (square) and written as PNG, with a row in
``cams.csv`` (``docs/weak_pipeline.md``). The CAM class is the predicted one for S and the ground truth for
SA/ST, as upstream (``cam_class="auto"``). The prediction and ``prob`` (the softmax probability of the CAM
class) come from the logits upstream's test scripts use (``cam_logits="auto"``): S's **raw** head
(``softmax(x11)`` in ``S/test.py``), the **fused** logits of SA and ST (``softmax(x1)`` in their ``test.py``).
*Selective* (default, as upstream): only correctly classified frames get a CAM. ST's CAMs cover every
frame: a clip's first and last second, which ST does not train on, use frame t for the missing neighbour
(``TripletDataset(edges="repeat")``), so the three CAM folders stay aligned.
"""

from __future__ import annotations

import csv
import json
import os

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from avsal.data.datasets import FrameDataset, TripletDataset, read_manifest
from avsal.errors import InputError, OutputError
from avsal.io.write import atomic_file, write_json_atomic
from avsal.train.tasks import BRANCHES, ScamTask


def load_run(run: str) -> tuple[ScamTask, torch.nn.Module]:
    """The task config and trained network of a SCAM run folder (``config.json`` + ``model.safetensors``).

    Raises:
        InputError: not a finished SCAM run.
    """
    cfg_path = os.path.join(run, "config.json")
    weights = os.path.join(run, "model.safetensors")
    if not os.path.isfile(cfg_path) or not os.path.isfile(weights):
        raise InputError(run, "not a finished training run (config.json and model.safetensors expected)")
    with open(cfg_path) as f:
        cfg = json.load(f)["task"]
    if cfg.get("branch") not in BRANCHES:
        raise InputError(cfg_path, "not a SCAM run (no S/SA/ST branch in its config)")
    task = ScamTask(**{k: v for k, v in cfg.items() if k in ScamTask.__dataclass_fields__ and k != "classes"})
    from safetensors.torch import load_file

    net = task.build_model()
    net.load_state_dict(load_file(weights), strict=True)
    return task, net.eval()


def cam_image(map_raw: torch.Tensor, map_fused: torch.Tensor, cls: int, size: int) -> np.ndarray:
    """uint8 ``[size, size]`` CAM of class ``cls`` from ``[K, h, w]`` maps (0 everywhere if it never fires)."""
    att = torch.relu((map_raw[cls] + map_fused[cls]) / 2).float().cpu().numpy()
    mx = att.max()
    att = att / mx if mx > 0 else att
    return cv2.resize(np.round(att * 255).astype(np.uint8), (size, size), interpolation=cv2.INTER_LINEAR)


@torch.no_grad()
def compute_cams(run: str, data: str, out: str, split: str = "train", cam_class: str = "auto",
                 selective: bool = True, batch_size: int = 8, progress: bool = True,
                 cam_logits: str = "auto") -> int:
    """Write the CAM folder of a trained branch over a prepared root's split.

    Args:
        run: SCAM run folder.
        data: prepared root (the crops root for a fine run).
        out: CAM folder to write.
        split: manifest split.
        cam_class: ``"pred"``, ``"label"`` or ``"auto"`` (S: predicted, SA/ST: ground truth).
        selective: keep only correctly classified frames.
        batch_size: frames per forward pass.
        cam_logits: logits whose softmax gives the prediction and ``prob``: ``"raw"``, ``"fused"`` or
            ``"auto"`` (upstream: raw for S, fused for SA and ST).

    Returns:
        Number of CAMs written.

    Raises:
        ValueError: unknown ``cam_class`` or ``cam_logits``.
    """
    task, net = load_run(run)
    task.data = data
    samples = read_manifest(data, split)
    k = len(task.classes)
    ds = (TripletDataset(samples, task.transform(False), k, edges="repeat") if task.branch == "ST"
          else FrameDataset(samples, task.transform(False), k))
    use = {"auto": "pred" if task.branch == "S" else "label"}.get(cam_class, cam_class)
    if use not in ("pred", "label"):
        raise ValueError(f"cam_class must be pred, label or auto, got {cam_class!r}")
    logits_from = {"auto": "raw" if task.branch == "S" else "fused"}.get(cam_logits, cam_logits)
    if logits_from not in ("raw", "fused"):
        raise ValueError(f"cam_logits must be raw, fused or auto, got {cam_logits!r}")
    os.makedirs(out, exist_ok=True)
    rows = []
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False)
    for frames, audio, label, idx in tqdm(loader, desc=f"CAMs {task.branch}", disable=not progress, leave=False):
        if task.branch == "S":
            raw, fused, m1, m2 = net(frames)
        elif task.branch == "SA":
            raw, fused, m1, m2 = net(frames, audio)
        else:
            o = net(frames)
            raw, fused, m1, m2 = o[0], o[1], o[6], o[7]
        prob = torch.softmax((raw if logits_from == "raw" else fused).float(), 1)
        pred = prob.argmax(1)
        for b in range(len(idx)):
            s = samples[int(idx[b])]
            cls = int(pred[b]) if use == "pred" else s.class_id
            correct = int(pred[b]) == s.class_id
            if selective and not correct:
                continue
            rel = os.path.join(s.clip, f"{s.second:02d}.png")
            os.makedirs(os.path.join(out, s.clip), exist_ok=True)
            img = cam_image(m1[b], m2[b], cls, task.crop)
            with atomic_file(os.path.join(out, rel)) as tmp:
                if not cv2.imwrite(tmp, img):
                    raise OutputError(os.path.join(out, rel), "PNG could not be written")
            rows.append({"clip": s.clip, "second": s.second, "class_id": s.class_id, "cam_class": cls,
                         "pred": int(pred[b]), "prob": float(prob[b, cls]), "correct": int(correct), "cam": rel})
    with atomic_file(os.path.join(out, "cams.csv")) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["clip", "second", "class_id", "cam_class", "pred", "prob", "correct", "cam"])
        w.writeheader()
        w.writerows(rows)
    write_json_atomic(os.path.join(out, "cams_config.json"),
                      {"run": os.path.abspath(run), "data": os.path.abspath(data), "split": split, "cam_class": use,
                       "selective": selective, "cam_logits": logits_from, "branch": task.branch,
                       "stage": task.stage, "size": task.crop})
    return len(rows)
