"""Tests of avsal.pseudo_gt: the fusion steps by hand, then crop → finalize on a tiny synthetic dataset."""

from __future__ import annotations

import argparse
import csv
import json
import os

import cv2
import numpy as np
import pytest

from avsal.errors import InputError
from avsal.io.audio import read_features_h5, write_features_h5
from avsal.pseudo_gt import command
from avsal.pseudo_gt.fusion import (adaptive_box, average_boxes, crop_box, fuse_cams, minmax, paste_cam,
                                    resize_map, sparsify, temporal_smooth, upstream_written)
from avsal.pseudo_gt.pipeline import crop_stage, finalize_stage, read_cam_index

# ---------------------------------------------------------------------------------------------- fusion


def test_minmax_hand_values_and_constant_map():
    m = np.array([[1.0, 3.0], [5.0, 9.0]])
    np.testing.assert_allclose(minmax(m), [[0, 0.25], [0.5, 1.0]])
    # MatrixNormalization.m leaves a constant map as it is
    np.testing.assert_array_equal(minmax(np.full((3, 3), 0.5)), np.full((3, 3), 0.5))
    np.testing.assert_allclose(minmax(np.array([[0, 51], [102, 255]], np.uint8)), [[0, 0.2], [0.4, 1.0]])


def test_fuse_cams_hand_example():
    v = np.array([[0.0, 0.5, 1.0]])
    a = np.array([[1.0, 0.0, 0.0]])
    # Up = 0.6 v + 0.2 a + eps = [0.2, 0.3, 0.6] + eps; F = minmax(Up / Down) = [0, 0.25, 1]
    np.testing.assert_allclose(fuse_cams({"S": v, "SA": a}, {"S": 0.6, "SA": 0.2}), [[0, 0.25, 1]], atol=1e-12)


def test_fuse_cams_branch_with_zero_prob_has_no_influence():
    rng = np.random.default_rng(0)
    s, t1, t2 = (rng.random((8, 8)) for _ in range(3))
    f1 = fuse_cams({"S": s, "ST": t1}, {"S": 0.7, "ST": 0.0})
    f2 = fuse_cams({"S": s, "ST": t2}, {"S": 0.7, "ST": 0.0})
    np.testing.assert_allclose(f1, f2)
    np.testing.assert_allclose(f1, minmax(s), atol=1e-12)


def test_fuse_cams_eps_behaviour_and_input_checks():
    rng = np.random.default_rng(1)
    s, a = rng.random((5, 5)), rng.random((5, 5))
    # every weight 0: (0 + eps) / (0 + eps) = 1 everywhere, a constant that minmax keeps
    np.testing.assert_array_equal(fuse_cams({"S": s, "SA": a}, {"S": 0.0, "SA": 0.0}), np.ones((5, 5)))
    # the formula, written out
    ps, pa, eps = 0.3, 0.01, 1e-4
    want = minmax((minmax(s) * ps + minmax(a) * pa + eps) / (ps + pa + eps))
    np.testing.assert_allclose(fuse_cams({"S": s, "SA": a}, {"S": ps, "SA": pa}, eps=eps), want)
    # weights far below eps still give the weighted shape once min-max normalised (no NaN)
    tiny = fuse_cams({"S": s, "SA": a}, {"S": 3e-9, "SA": 1e-9})
    np.testing.assert_allclose(tiny, minmax(3 * minmax(s) + minmax(a)), atol=1e-6)
    with pytest.raises(ValueError):
        fuse_cams({"S": s, "SA": a[:4]}, {"S": 1, "SA": 1})
    with pytest.raises(ValueError):
        fuse_cams({"S": s}, {"SA": 1})
    with pytest.raises(ValueError):
        fuse_cams({"S": s}, {"S": -0.1})
    with pytest.raises(ValueError):
        fuse_cams({}, {})


def test_crop_box_around_one_blob():
    f = np.zeros((64, 64))
    f[10:20, 30:45] = 1.0  # mean = 150/4096, 2*mean << 1
    assert crop_box(f) == (10, 19, 30, 44)
    assert crop_box(np.full((8, 8), 0.3)) is None  # nothing above 2*mean
    g = np.zeros((10, 10))
    g[2, 3] = 1.0
    g[7, 8] = 0.5  # mean 0.015: both pass
    assert crop_box(g) == (2, 7, 3, 8)
    assert crop_box(g, factor=40.0) == (2, 2, 3, 3)  # threshold 0.6: only the peak


def test_resize_before_box_puts_the_box_at_the_scaled_place():
    cam = np.zeros((256, 256))
    cam[64:128, 128:192] = 1.0
    raw = crop_box(cam)
    assert raw == (64, 127, 128, 191)  # upstream would apply this to the 356² image
    box = crop_box(resize_map(cam, (356, 356)))
    s = 356 / 256
    want = (64 * s, 128 * s - 1, 128 * s, 192 * s - 1)  # (89, 177, 178, 266)
    assert all(abs(b - w) <= 2 for b, w in zip(box, want)), (box, want)


def test_adaptive_box_lowers_the_threshold_until_100px():
    yy, xx = np.mgrid[0:356, 0:356]
    f = minmax(np.exp(-((yy - 150) ** 2 + (xx - 200) ** 2) / (2 * 15.0 ** 2)))
    small = crop_box(f, 2.0)
    assert small[1] - small[0] < 100  # the upstream box is smaller than 100 px
    box, alpha = adaptive_box(f, return_alpha=True)
    assert box[1] - box[0] >= 100 and box[3] - box[2] >= 100
    assert alpha < 2.0
    prev = crop_box(f, alpha + 0.05)  # one step earlier was still too small
    assert prev is None or prev[1] - prev[0] < 100 or prev[3] - prev[2] < 100
    assert box == crop_box(f, alpha)
    assert abs((box[0] + box[1]) / 2 - 150) <= 1 and abs((box[2] + box[3]) / 2 - 200) <= 1
    # a map already wide enough keeps alpha = start
    wide = np.zeros((356, 356))
    wide[50:200, 60:300] = 1
    assert adaptive_box(wide, return_alpha=True) == ((50, 199, 60, 299), 2.0)
    # terminates: a grid smaller than min_size gives the full map, an all-zero map gives None
    assert adaptive_box(np.random.default_rng(0).random((50, 50))) == (0, 49, 0, 49)
    assert adaptive_box(np.zeros((20, 20))) is None


def test_average_boxes_over_three_seconds():
    boxes = {0: (0, 10, 0, 10), 1: (3, 13, 3, 13), 2: (6, 16, 6, 16), 5: (20, 30, 20, 30)}
    out = average_boxes(boxes, 3)
    assert out[1] == (3, 13, 3, 13)
    assert out[0] == (1, 11, 1, 11)  # (0 + 0 + 3) / 3, (10 + 10 + 13) / 3: the missing t-1 counts as t
    assert out[2] == (5, 15, 5, 15)  # (3 + 6 + 6) / 3, (13 + 16 + 16) / 3
    assert out[5] == (20, 30, 20, 30)
    assert average_boxes(boxes, 1) == boxes


def test_paste_cam_into_box():
    out = paste_cam(np.full((8, 8), 255, np.uint8), (10, 19, 20, 29), grid=64)
    assert out.shape == (64, 64)
    np.testing.assert_allclose(out[10:20, 20:30], 1.0)
    assert np.all(out[:10] == 0) and np.all(out[20:] == 0) and np.all(out[:, :20] == 0) and np.all(out[:, 30:] == 0)
    cam = np.zeros((50, 50))
    cam[20:30, 20:30] = 1.0  # blob in the middle of the crop
    out = paste_cam(cam, (100, 199, 0, 99), grid=356)
    r, c = np.unravel_index(np.argmax(out), out.shape)
    assert 140 <= r <= 159 and 40 <= c <= 59
    assert out.min() >= 0 and out.max() <= 1  # bicubic overshoot clipped, as imwrite did
    with pytest.raises(ValueError):
        paste_cam(cam, (300, 360, 0, 10), grid=356)


def _reference_smooth(maps, window=5):
    """Straightforward transcription of CAMsmooth.m's loop (index 3 fills the buffer, then slide)."""
    norm = [minmax(m) for m in maps]
    n, h = len(maps), window // 2
    result = {}
    slots = list(norm[:window])
    avg = minmax(sum(slots[1:], slots[0]) / window)
    slots[window - 1] = avg
    result[h] = avg
    for centre in range(h + 1, n - h):
        for k in range(window - 1):
            slots[k] = slots[k + 1]
        slots[window - 1] = norm[centre + h]
        avg = minmax(sum(slots[1:], slots[0]) / window)
        slots[window - 1] = avg
        result[centre] = avg
    return result


def test_temporal_smooth_matches_the_upstream_loop():
    rng = np.random.default_rng(2)
    maps = [rng.random((4, 6)) * (i + 1) for i in range(9)]
    got = temporal_smooth(maps)
    ref = _reference_smooth(maps)
    assert [i for i, g in enumerate(got) if g is not None] == sorted(ref) == [2, 3, 4, 5, 6]
    for i, r in ref.items():
        np.testing.assert_allclose(got[i], r, atol=1e-12)
    # the recursion matters: from the second window on it differs from a plain moving mean
    plain = temporal_smooth(maps, recursive=False)
    np.testing.assert_allclose(plain[2], got[2])
    np.testing.assert_allclose(plain[4], minmax(sum(minmax(m) for m in maps[2:7]) / 5))
    assert not np.allclose(plain[4], got[4])


def test_temporal_smooth_known_answer_and_edges():
    # 1x3 maps; frame i is [0, i, 10] → minmax [0, i/10, 1]
    maps = [np.array([[0.0, float(i), 10.0]]) for i in range(6)]
    out = temporal_smooth(maps)
    # centre 2: mean of middles 0..4 = 0.2 → [0, .2, 1]; newest slot := that
    np.testing.assert_allclose(out[2], [[0, 0.2, 1]])
    # centre 3: slots 1, 2, 3, (0.2 smoothed), 5 → middle (0.1+0.2+0.3+0.2+0.5)/5 = 0.26
    np.testing.assert_allclose(out[3], [[0, 0.26, 1]])
    assert out[0] is None and out[1] is None and out[4] is None and out[5] is None
    assert temporal_smooth(maps[:4]) == [None] * 4
    one = temporal_smooth(maps, window=1)
    np.testing.assert_allclose(one[3], minmax(maps[3]))
    with pytest.raises(ValueError):
        temporal_smooth(maps, window=4)
    assert upstream_written(10) == [3, 4, 5]  # CAMsmooth.m: index 4 .. < path_len - 5 (1-based)


def test_sparsify_keeps_values_at_or_above_factor_times_mean():
    m = np.zeros((2, 5))
    m[0, 0], m[0, 1], m[1, 0] = 1.0, 0.5, 0.2  # mean 0.17 → threshold 0.51
    out = sparsify(m)
    assert out[0, 0] == 1.0 and out[0, 1] == 0.0 and out[1, 0] == 0.0
    assert sparsify(m, factor=2.0)[0, 1] == 0.5  # threshold 0.34
    np.testing.assert_array_equal(sparsify(np.full((2, 2), 0.5), factor=1.0), np.full((2, 2), 0.5))  # == kept
    assert m[0, 1] == 0.5  # input untouched


# ---------------------------------------------------------------------------------------------- end to end

CLIPS = {"vidA": (range(0, 8), (180, 240)), "vidB": (range(3, 11), (144, 256))}  # seconds, original (H, W)
CAM_BLOB = (64, 128, 128, 192)  # rows 64..127, cols 128..191 on the 256² coarse CAM
MISSING_ST = ("vidB", 4)  # selective CAMs: the ST branch misclassified this frame


def _write_png(path, img):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), img)


def _write_cams_csv(folder, rows):
    with open(os.path.join(folder, "cams.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip", "second", "class_id", "cam_class", "pred", "prob", "correct", "cam"])
        w.writerows(rows)


def _blob_cam(size, rows, cols, rng):
    cam = (rng.random((size, size)) * 20).astype(np.uint8)
    cam[rows[0]:rows[1], cols[0]:cols[1]] = 255
    return cam


@pytest.fixture()
def dataset(tmp_path):
    rng = np.random.default_rng(3)
    root = tmp_path / "root"
    rows = []
    for clip, (secs, (h, w)) in CLIPS.items():
        for s in secs:
            img = np.full((h, w, 3), 40, np.uint8)
            r0, r1 = int(CAM_BLOB[0] / 256 * h), int(CAM_BLOB[1] / 256 * h)
            c0, c1 = int(CAM_BLOB[2] / 256 * w), int(CAM_BLOB[3] / 256 * w)
            img[r0:r1, c0:c1] = (230, 20, 20)  # a red object where the CAMs point
            _write_png(root / "frames" / clip / f"{s:02d}.jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            os.makedirs(root / "audio" / clip, exist_ok=True)
            write_features_h5(root / "audio" / clip / f"{s:02d}.h5", np.full((81, 199), s, np.float32))
            rows.append([clip, s, f"frames/{clip}/{s:02d}.jpg", f"audio/{clip}/{s:02d}.h5", 1, "Banjo", "train"])
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip", "second", "frame", "audio", "class_id", "class_name", "split"])
        w.writerows(rows)
    (root / "classes.json").write_text(json.dumps(["Accordion", "Banjo"]))
    (root / "prepare_config.json").write_text(json.dumps({"stage": "prepare"}))
    (root / "failures.csv").write_text("clip,reason\n")

    cams = {}
    sizes = {"S": 256, "SA": 224, "ST": 256}  # SA at 224 as upstream's SA crop
    for b, size in sizes.items():
        d = tmp_path / f"coarse_{b}"
        cam_rows = []
        for clip, (secs, _hw) in CLIPS.items():
            for s in secs:
                if b == "ST" and (clip, s) == MISSING_ST:
                    continue
                k = size / 256
                cam = _blob_cam(size, (round(CAM_BLOB[0] * k), round(CAM_BLOB[1] * k)),
                                (round(CAM_BLOB[2] * k), round(CAM_BLOB[3] * k)), rng)
                _write_png(d / clip / f"{s:02d}.png", cam)
                cam_rows.append([clip, s, 1, 1, 1, 0.9 if b == "S" else 0.6, 1, f"{clip}/{s:02d}.png"])
        _write_cams_csv(d, cam_rows)
        cams[b] = str(d)
    return root, cams


def _fine_cams(tmp_path, crops, name="fine"):
    """Fine CAMs on the crops root's frames: a blob in the middle of each 356² crop."""
    rng = np.random.default_rng(4)
    with open(crops / "manifest.csv", newline="") as f:
        keys = [(r["clip"], int(r["second"])) for r in csv.DictReader(f)]
    cams = {}
    for b in ("S", "SA", "ST"):
        d = tmp_path / f"{name}_{b}"
        rows = []
        for clip, s in keys:
            _write_png(d / clip / f"{s:02d}.png", _blob_cam(356, (120, 240), (120, 240), rng))
            rows.append([clip, s, 1, 1, 1, {"S": 0.8, "SA": 0.5, "ST": 0.3}[b], 1, f"{clip}/{s:02d}.png"])
        _write_cams_csv(d, rows)
        cams[b] = str(d)
    return cams


def _cli(argv):
    p = argparse.ArgumentParser(prog="avsal")
    sub = p.add_subparsers(dest="command", required=True)
    command.add_parser(sub)
    args = p.parse_args(argv)
    assert args.command == "pseudo-gt"
    return command.run(args)


def _cams_args(cams):
    return ["--cams", *[f"{b}={d}" for b, d in cams.items()]]


def _read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_crop_then_finalize_end_to_end(tmp_path, dataset, capsys):
    root, cams = dataset
    crops = tmp_path / "crops"
    assert _cli(["pseudo-gt", "crop", "--data", str(root), *_cams_args(cams), "--out", str(crops), "--quiet"]) == 0

    manifest = _read_rows(crops / "manifest.csv")
    keys = [(r["clip"], int(r["second"])) for r in manifest]
    expected = [(c, s) for c, (secs, _) in CLIPS.items() for s in secs if (c, s) != MISSING_ST]
    assert keys == expected  # require_all: the frame without an ST CAM is not cropped
    assert json.loads((crops / "classes.json").read_text()) == ["Accordion", "Banjo"]
    cfg = json.loads((crops / "crop_config.json").read_text())
    assert cfg["complete"] and cfg["settings"]["grid"] == 356 and cfg["counts"]["cropped"] == len(expected)
    assert cfg["counts"]["skipped_missing_branch"] == 1
    skipped = _read_rows(crops / "skipped.csv")
    assert [(r["clip"], int(r["second"])) for r in skipped] == [MISSING_ST] and "ST" in skipped[0]["reason"]

    boxes = _read_rows(crops / "boxes.csv")
    assert [(b["clip"], int(b["second"])) for b in boxes] == expected
    s = 356 / 256
    want = (CAM_BLOB[0] * s, CAM_BLOB[1] * s - 1, CAM_BLOB[2] * s, CAM_BLOB[3] * s - 1)  # 89, 177, 178, 266
    for b in boxes:
        got = tuple(int(b[k]) for k in ("row0", "row1", "col0", "col1"))
        assert all(abs(g - w) <= 3 for g, w in zip(got, want)), (got, want)
    for r in manifest:
        crop = cv2.imread(str(crops / r["frame"]))
        assert crop.shape == (356, 356, 3)
        red = (crop[..., 2] > 150) & (crop[..., 1] < 100)
        assert red.mean() > 0.8  # the crop is the red object
        feats = read_features_h5(crops / r["audio"])
        assert feats.shape == (81, 199) and feats[0, 0] == int(r["second"])
        assert r["split"] == "train" and r["class_name"] == "Banjo"

    # resumable: same settings → files kept; other settings → refused (exit 2) unless overwrite
    res = crop_stage(root, cams, crops, progress=False)
    assert res["reused"] == len(expected)
    assert _cli(["pseudo-gt", "crop", "--data", str(root), *_cams_args(cams), "--out", str(crops),
                 "--factor", "2.5", "--quiet"]) == 2
    assert "other settings" in capsys.readouterr().err

    fine = _fine_cams(tmp_path, crops)
    pgt = tmp_path / "pgt"
    assert _cli(["pseudo-gt", "finalize", "--crops", str(crops), *_cams_args(fine), "--out", str(pgt),
                 "--quiet"]) == 0
    rows = _read_rows(pgt / "pseudo_gt.csv")
    got = [(r["clip"], int(r["second"])) for r in rows]
    # 5-frame windows inside runs of consecutive seconds: vidA 0..7 → 2..5; vidB 3 | 5..10 → 7, 8
    assert got == [("vidA", 2), ("vidA", 3), ("vidA", 4), ("vidA", 5), ("vidB", 7), ("vidB", 8)]
    box_of = {(b["clip"], int(b["second"])): tuple(int(b[k]) for k in ("row0", "row1", "col0", "col1"))
              for b in boxes}
    for r in rows:
        m = cv2.imread(str(pgt / r["path"]), cv2.IMREAD_UNCHANGED)
        assert m.shape == (356, 356) and m.dtype == np.uint8 and m.max() == 255
        nz = np.argwhere(m > 0)
        r0 = min(b[0] for k, b in box_of.items() if k[0] == r["clip"])
        r1 = max(b[1] for k, b in box_of.items() if k[0] == r["clip"])
        c0 = min(b[2] for k, b in box_of.items() if k[0] == r["clip"])
        c1 = max(b[3] for k, b in box_of.items() if k[0] == r["clip"])
        assert nz[:, 0].min() >= r0 and nz[:, 0].max() <= r1 and nz[:, 1].min() >= c0 and nz[:, 1].max() <= c1
        assert 0 < (m > 0).mean() < 0.25  # sparsified
        # the fine blob sits in the middle third of the crop → the pseudo-GT peak sits in the middle of the box
        rr, cc = np.argwhere(m == 255).mean(axis=0)
        b = box_of[(r["clip"], int(r["second"]))]
        assert abs(rr - (b[0] + b[1]) / 2) < 15 and abs(cc - (b[2] + b[3]) / 2) < 15
    cfg = json.loads((pgt / "pseudo_gt_config.json").read_text())
    assert cfg["complete"] and cfg["settings"]["smoothing"] and cfg["settings"]["factor"] == 3.0

    # upstream's frame range (CAMsmooth.m): positions 3 .. n-5 of each run → only vidA 3 (vidB's run has 6)
    res = finalize_stage(crops, fine, tmp_path / "pgt_up", frames="upstream", progress=False)
    assert [(r["clip"], int(r["second"])) for r in _read_rows(tmp_path / "pgt_up" / "pseudo_gt.csv")] == [("vidA", 3)]

    # no smoothing: every fused frame is written
    pgt2 = tmp_path / "pgt_nosmooth"
    res = finalize_stage(crops, fine, pgt2, smoothing=False, progress=False)
    assert res["written"] == len(expected)


def test_any_branch_fuses_what_exists(tmp_path, dataset):
    root, cams = dataset
    crops = tmp_path / "crops_any"
    res = crop_stage(root, cams, crops, require_all=False, progress=False)
    n_all = sum(len(secs) for secs, _ in CLIPS.values())
    assert res["cropped"] == n_all and res["skipped_missing_branch"] == 0
    keys = {(r["clip"], int(r["second"])) for r in _read_rows(crops / "boxes.csv")}
    assert MISSING_ST in keys

    fine = _fine_cams(tmp_path, crops, "fine_any")
    # drop SA's CAM of one frame: require_all skips it, any-branch keeps it
    rows = _read_rows(os.path.join(fine["SA"], "cams.csv"))
    _write_cams_csv(fine["SA"], [[r[k] for k in r] for r in rows if (r["clip"], r["second"]) != ("vidA", "3")])
    pgt = tmp_path / "pgt_any"
    res = finalize_stage(crops, fine, pgt, smoothing=False, require_all=False, progress=False)
    assert res["written"] == n_all
    res = finalize_stage(crops, fine, tmp_path / "pgt_all", smoothing=False, progress=False)
    assert res["written"] == n_all - 1


def test_sta_trial_variant(tmp_path, dataset):
    root, cams = dataset
    crops = tmp_path / "crops_tr"
    res = crop_stage(root, cams, crops, box="adaptive", progress=False)
    boxes = _read_rows(crops / "boxes.csv")
    assert len(boxes) == res["cropped"] > 0
    for b in boxes:  # box extent >= 100 in both directions (the 3-second average keeps it: all equal-ish)
        assert int(b["row1"]) - int(b["row0"]) >= 99 and int(b["col1"]) - int(b["col0"]) >= 99
    cfg = json.loads((crops / "crop_config.json").read_text())
    assert cfg["settings"]["box_window"] == 3
    fine = _fine_cams(tmp_path, crops, "fine_tr")
    pgt = tmp_path / "pgt_tr"
    assert _cli(["pseudo-gt", "finalize", "--crops", str(crops), *_cams_args(fine), "--out", str(pgt),
                 "--variant", "sta_trial", "--quiet"]) == 0
    rows = _read_rows(pgt / "pseudo_gt.csv")
    assert len(rows) == len(boxes)  # no smoothing: every frame
    box_of = {(b["clip"], b["second"]): tuple(int(b[k]) for k in ("row0", "row1", "col0", "col1")) for b in boxes}
    for r in rows:
        m = cv2.imread(str(pgt / r["path"]), cv2.IMREAD_UNCHANGED)
        assert m.shape == (356, 356) and m.max() == 255
        r0, r1, c0, c1 = box_of[(r["clip"], r["second"])]
        outside = m.copy()
        outside[r0:r1 + 1, c0:c1 + 1] = 0
        assert not outside.any()
        assert (m[r0:r1 + 1, c0:c1 + 1] > 0).mean() > 0.25  # no sparsify threshold


def test_bad_inputs_are_named(tmp_path, dataset, capsys):
    root, cams = dataset
    # a corrupt CAM PNG
    bad = os.path.join(cams["SA"], "vidA", "02.png")
    with open(bad, "wb") as f:
        f.write(b"not a png")
    with pytest.raises(InputError) as e:
        crop_stage(root, cams, tmp_path / "c1", progress=False)
    assert e.value.path == bad
    assert _cli(["pseudo-gt", "crop", "--data", str(root), *_cams_args(cams), "--out", str(tmp_path / "c2"),
                 "--quiet"]) == 2
    assert bad in capsys.readouterr().err
    # a CAM folder without cams.csv
    empty = tmp_path / "nocams"
    empty.mkdir()
    with pytest.raises(InputError) as e:
        read_cam_index(empty)
    assert e.value.path.endswith("cams.csv")
    # a missing frame JPEG
    os.remove(bad)
    os.remove(root / "frames" / "vidA" / "00.jpg")
    rows = _read_rows(os.path.join(cams["SA"], "cams.csv"))
    _write_cams_csv(cams["SA"], [[r[k] for k in r] for r in rows if (r["clip"], r["second"]) != ("vidA", "2")])
    with pytest.raises(InputError) as e:
        crop_stage(root, cams, tmp_path / "c3", progress=False)
    assert e.value.path.endswith(os.path.join("vidA", "00.jpg"))
    # bad --cams syntax and CAM folders that match nothing
    assert _cli(["pseudo-gt", "crop", "--data", str(root), "--cams", "S", "--out", str(tmp_path / "c4")]) == 2
    other = tmp_path / "other"
    other.mkdir()
    _write_cams_csv(other, [["someclip", 0, 1, 1, 1, 0.5, 1, "someclip/00.png"]])
    assert _cli(["pseudo-gt", "crop", "--data", str(root), "--cams", f"S={other}", "--out",
                 str(tmp_path / "c5"), "--quiet"]) == 2
    assert "no frame" in capsys.readouterr().err
