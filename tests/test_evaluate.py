"""Tests of the STAViS evaluation protocol and ``avsal evaluate``.

* Hand-checkable cases: the blur kernel, postprocessMap's conventions, frame selection, the
  other map, NaN-dropped means, pooled vs DIEM aggregation, uint8 quantisation.
* The spec's STAViS per-frame example (evaluation-metrics.md section 5), when the shared specs exist.
* A tiny STAViS-layout dataset built here (2 videos x 20 frames, eyeMap JPEGs and fixMap .mat
  files written like the release, predictions as pred_sal_%06d.jpg) run end to end through
  ``avsal evaluate``; every value checked against direct metric calls with an independent
  re-implementation of the post-processing.
* Prediction layouts (STAViS, avsal, pattern), ViNet protocol, --jobs invariance, bad input.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image
from scipy import ndimage

from avsal import metrics as M
from avsal.errors import InputError
from avsal.evaluate import command, imresize
from avsal.evaluate import protocol as P
from avsal.evaluate import readers as R
from avsal.evaluate import runner
from avsal.evaluate.resize import resize_to




NF = 20  # frames per video of the tiny dataset
H, W = 45, 80  # its ground-truth size
PS = 28  # prediction size


# --------------------------------------------------------------------------------------
# hand-checkable pieces
# --------------------------------------------------------------------------------------


def test_gaussian_kernel_is_fspecial():
    g = P.gaussian_kernel(2.0)
    assert g.shape == (13,) and abs(g.sum() - 1) < 1e-15 and np.allclose(g, g[::-1])
    # fspecial('gaussian', 13, 2): exp(-(i^2+j^2)/8) / sum, = outer(g, g)
    i = np.arange(-6, 7)
    h = np.exp(-(i[:, None] ** 2 + i[None, :] ** 2) / 8.0)
    assert np.max(np.abs(np.outer(g, g) - h / h.sum())) < 1e-17
    assert P.gaussian_kernel(1.0).shape == (7,) and P.gaussian_kernel(0.4).shape == (5,)


def test_blur_matches_2d_convolution_and_hand_value():
    rng = np.random.default_rng(0)
    x = rng.random((30, 41))
    i = np.arange(-6, 7)
    h = np.exp(-(i[:, None] ** 2 + i[None, :] ** 2) / 8.0)
    ref = ndimage.convolve(x, h / h.sum(), mode="reflect")  # spec: identical to Octave's imfilter
    assert np.max(np.abs(P.gaussian_blur(x, 2.0) - ref)) < 1e-15
    # a single 1 far from the borders: the centre keeps g0^2, g0 = 1 / sum_i exp(-i^2/8)
    d = np.zeros((31, 31))
    d[15, 15] = 1.0
    g0 = 1.0 / (1 + 2 * sum(math.exp(-k * k / 8.0) for k in range(1, 7)))
    b = P.gaussian_blur(d, 2.0)
    assert abs(b[15, 15] - g0 * g0) < 1e-15 and abs(b.sum() - 1) < 1e-14
    # mirrored borders keep a constant map constant
    assert np.allclose(P.gaussian_blur(np.full((5, 7), 0.3)), 0.3, atol=1e-15)


def test_postprocess_conventions():
    # constant non-zero -> 0.5 everywhere (normalizeImage1), all-zero -> all NaN (0/0)
    assert np.allclose(P.postprocess_map(np.full((8, 8), 0.3)), 0.5, atol=1e-15)
    with np.errstate(invalid="ignore"):
        assert np.isnan(P.postprocess_map(np.zeros((8, 8)))).all()
    # the steps by hand: x255, clip, /max*255, min-max, blur
    x = np.linspace(0.1, 0.6, 35 * 30).reshape(35, 30)
    y = np.clip(255 * x, 0, 255)
    y = y / y.max() * 255
    y = (y - y.min()) / (y.max() - y.min())
    assert np.max(np.abs(P.postprocess_map(x) - P.gaussian_blur(y))) < 1e-15
    # values above 1 are clipped before the rescaling
    z = np.array([[0.0, 0.5], [2.0, 1.0]])
    assert np.allclose(P.normalize_image1(np.clip(255 * z, 0, 255)), [[0, 0.5], [1, 1]])


def test_stavis_uint8_truncates():
    x = np.array([[0.0, 0.5], [0.999, 1.0]])
    q = P.stavis_uint8(x)
    assert np.array_equal(q * 255, [[0, 127], [254, 255]])  # 127.5 -> 127, 254.745 -> 254
    assert np.array_equal(P.stavis_uint8(np.full((2, 2), 3.0)), np.zeros((2, 2)))


@pytest.mark.parametrize("src,dst", [((112, 112), (360, 640)), ((30, 40), (120, 200)), ((9, 7), (45, 80)),
                                     ((200, 150), (45, 80)), ((50, 60), (50, 17)), ((1, 5), (3, 9))])
def test_resize_to_matches_imresize(src, dst):
    x = np.random.default_rng(1).random(src)
    a, b = resize_to(x, dst), imresize(x, dst)
    assert a.shape == dst and a.flags.c_contiguous
    assert np.max(np.abs(a - b)) < 1e-14


def test_resize_to_identity_and_errors():
    x = np.random.default_rng(2).random((4, 5))
    y = resize_to(x, (4, 5))
    assert np.array_equal(x, y) and y is not x
    with pytest.raises(ValueError):
        resize_to(np.zeros(5), (2, 2))
    with pytest.raises(ValueError):
        resize_to(x, (0, 3))


def test_select_frames():
    assert list(P.select_frames(20)) == list(range(9, 21))  # STAViS: 9..nframes
    assert list(P.select_frames(20, "all")) == list(range(1, 21))
    assert list(P.select_frames(8)) == [] and list(P.select_frames(9)) == [9]
    assert list(P.select_frames(5, "stavis", first_frame=2)) == [2, 3, 4, 5]
    with pytest.raises(ValueError):
        P.select_frames(5, "odd")


def test_other_map_hand():
    union = np.array([[1, 0, 1], [0, 1, 1], [0, 0, 0]], bool)
    fix = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0]], float)
    o = P.other_map(union, fix)
    assert o.dtype == bool
    assert np.array_equal(o, [[0, 0, 1], [0, 1, 0], [0, 0, 0]])
    # eval_*.m removes only pixels where eyeMap == 1
    assert P.other_map(union, 2 * fix)[0, 0] == 1


def test_video_seed():
    s = P.video_seed(0, "V32_Dancers", 1)
    assert s == P.video_seed(0, "V32_Dancers", 1) and 0 <= s < 2 ** 64
    assert len({s, P.video_seed(1, "V32_Dancers", 1), P.video_seed(0, "V32_Dancers", 2),
                P.video_seed(0, "V3_Speech3", 1)}) == 4
    a = P.video_rng(7, "x", 3).random(3)
    assert np.array_equal(a, P.video_rng(7, "x", 3).random(3))


def test_nan_means_hand():
    means, counts = P.nan_means({"cc": [0.5, np.nan, 0.25], "sim": [0.0, 0.0, 0.3], "nss": [np.nan]})
    assert means["cc"] == 0.375 and counts["cc"] == 2
    assert abs(means["sim"] - 0.1) < 1e-15 and counts["sim"] == 3
    assert np.isnan(means["nss"]) and counts["nss"] == 0


def _vr(split, video, cc, status="ok"):
    r = runner.VideoResult(split, video, 10, status=status, error=None if status == "ok" else "boom")
    if status == "ok":
        r.means, r.counts = {"cc": cc}, {"cc": 1}
    return r


def test_aggregate_pooled_vs_split_mean():
    res = [_vr(1, "a", 1.0), _vr(1, "b", 3.0), _vr(2, "c", 5.0)]
    pooled = runner.aggregate(res, ("cc",), "pooled")
    assert pooled.scores["cc"] == 3.0 and pooled.per_split == {1: {"cc": 2.0}, 2: {"cc": 5.0}}
    assert pooled.complete and pooled.n_videos == {"cc": 3}
    assert runner.aggregate(res, ("cc",), "split_mean").scores["cc"] == 3.5  # DIEM: mean of split means
    # a failed video and a NaN mean are left out and listed
    res2 = res + [_vr(2, "d", 0.0, status="failed"), _vr(2, "e", np.nan)]
    agg = runner.aggregate(res2, ("cc",), "pooled")
    assert agg.scores["cc"] == 3.0 and agg.n_videos == {"cc": 3} and agg.n_listed == 5 and not agg.complete
    assert {(s, v) for s, v, _ in agg.excluded} == {(2, "d"), (2, "e")}


def test_parse_metrics_and_config():
    assert P.parse_metrics("CC, nss,AUC-J,similarity,sAUC") == P.PAPER_METRICS
    assert P.parse_metrics(["kld", "auc_borji", "kld"]) == ("kld", "auc_b")
    with pytest.raises(ValueError, match="unknown metric"):
        P.parse_metrics("cc,emd")
    assert P.ProtocolConfig().frames == "stavis" and P.ProtocolConfig(protocol="vinet").frames == "all"
    with pytest.raises(ValueError):
        P.ProtocolConfig(protocol="matlab")


def test_spec_stavis_frame_example(spec_inputs):
    """Spec section 5: postprocessMap(sal_smooth112, 2) + imresize to 360x640 in Octave."""
    fix, dens = np.load(spec_inputs / "fix.npy"), np.load(spec_inputs / "dens.npy")
    S = P.prepare_prediction(np.load(spec_inputs / "sal_smooth112.npy"), fix.shape, P.ProtocolConfig())
    assert abs(M.cc(S, dens) - 0.73099347089688493) <= 1e-10
    assert abs(M.sim(S, dens) - 0.56432186476339607) <= 1e-10
    assert abs(M.nss(S, fix) - 1.0170673728250745) <= 1e-10
    # AUC-Judd: Octave's seed-0 jitter cannot be replayed; jitter changes it by ~1e-8 here
    assert abs(M.auc_judd(S, fix, jitter=False) - 0.77649785823854578) < 1e-6


# --------------------------------------------------------------------------------------
# the tiny STAViS-layout dataset
# --------------------------------------------------------------------------------------


def make_dataset(root: Path, videos=("vidA", "vidB"), seed=0) -> Path:
    """annotations/AVAD/<vid>/{maps/eyeMap_%05d.jpg, fixMap_%05d.mat} + fold_lists, like the release."""
    rng = np.random.default_rng(seed)
    (root / "fold_lists").mkdir(parents=True, exist_ok=True)
    for v in videos:
        d = root / "annotations" / "AVAD" / v
        (d / "maps").mkdir(parents=True, exist_ok=True)
        (root / "video_frames" / "AVAD" / v).mkdir(parents=True, exist_ok=True)
        for k in range(1, NF + 1):
            fix = np.zeros((H, W))
            n = 0 if k == 12 else int(rng.integers(1, 7))  # frame 12: nobody fixates
            fix[rng.integers(0, H, n), rng.integers(0, W, n)] = 1.0
            dens = ndimage.gaussian_filter(fix, 4.0)
            if dens.max() > 0:
                dens /= dens.max()
            Image.fromarray(np.round(255 * dens).astype(np.uint8)).save(d / "maps" / f"eyeMap_{k:05d}.jpg", quality=90)
            scipy.io.savemat(d / f"fixMap_{k:05d}.mat", {"eyeMap": fix})
    lists = {1: ["vidA"], 2: ["vidB"], 3: ["vidA"]}  # vidA is tested twice, like 3 AVAD videos
    for s, vs in lists.items():
        (root / "fold_lists" / f"AVAD_list_test_{s}_fps.txt").write_text("".join(f"{v} {NF} 25.000000\r\n" for v in vs))
    return root


def pred_map(seed: int) -> np.ndarray:
    x = ndimage.gaussian_filter(np.random.default_rng(seed).random((PS, PS)), 2.0)
    return np.round(255 * (x - x.min()) / (x.max() - x.min())).astype(np.uint8)


def make_stavis_preds(root: Path, videos=("vidA", "vidB")) -> Path:
    """split<s>_results/avad/<vid>/pred_sal_%06d.jpg for frames 9..NF+7, as STAViS writes them."""
    for s in (1, 2, 3):
        for vi, v in enumerate(videos):
            d = root / f"split{s}_results" / "avad" / v
            d.mkdir(parents=True, exist_ok=True)
            for k in range(9, NF + 8):
                Image.fromarray(pred_map(1000 * s + 100 * vi + k)).save(d / f"pred_sal_{k:06d}.jpg")
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    base = tmp_path_factory.mktemp("tiny")
    return make_dataset(base / "data"), make_stavis_preds(base / "pred")


def run_cli(argv, capsys=None):
    p = argparse.ArgumentParser(prog="avsal")
    command.add_parser(p.add_subparsers(dest="command"))
    rc = command.run(p.parse_args(["evaluate", *argv]))
    out = capsys.readouterr() if capsys is not None else None
    return rc, (out.out if out else ""), (out.err if out else "")


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def reference_frame_values(data, video, split, frames, pred_path, protocol="stavis", seed=0):
    """Direct metric calls with an independent post-processing (2-D convolve + imresize)."""
    d = data / "annotations" / "AVAD" / video
    union = sum(scipy.io.loadmat(d / f"fixMap_{k:05d}.mat")["eyeMap"] for k in range(1, NF + 1)) > 0
    i = np.arange(-6, 7)
    h = np.exp(-(i[:, None] ** 2 + i[None, :] ** 2) / 8.0)
    h /= h.sum()
    gen = P.video_rng(seed, video, split)
    out = {}
    for k in frames:
        pred = np.asarray(Image.open(pred_path(k)), dtype=np.float64) / 255.0
        if pred.ndim == 3:
            pred = pred[:, :, 0]
        if protocol == "stavis":
            x = np.clip(255 * pred, 0, 255)
            x = x / x.max() * 255
            x = (x - x.min()) / (x.max() - x.min())
            pred = ndimage.convolve(x, h, mode="reflect")
        dens = np.asarray(Image.open(d / "maps" / f"eyeMap_{k:05d}.jpg"), dtype=np.float64) / 255.0
        fix = scipy.io.loadmat(d / f"fixMap_{k:05d}.mat")["eyeMap"]
        other = union.astype(float)
        other[fix == 1] = 0
        S = imresize(pred, dens.shape)
        out[k] = M.compute_metrics(S, fix=fix, dens=dens, other=other, rng=gen)
    return out


def close(a, b, tol=1e-9):
    return (np.isnan(a) and np.isnan(b)) or abs(a - b) <= tol


def test_end_to_end_stavis_layout(tiny, tmp_path, capsys):
    data, pred = tiny
    out = tmp_path / "report"
    rc, stdout, err = run_cli(["--data-root", str(data), "--dataset", "AVAD", "--pred", str(pred),
                               "--out", str(out), "--quiet"], capsys)
    assert rc == 0, err
    for f in ("per_frame.csv", "per_video.csv", "summary.json", "summary.md", "per_video.png", "examples.png"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left
    rows = read_csv(out / "per_frame.csv")
    assert len(rows) == 3 * (NF - 8)  # 3 test-list entries x frames 9..20
    per_video = read_csv(out / "per_video.csv")
    summary = json.loads((out / "summary.json").read_text())
    means = []
    for entry in per_video:
        s, v = int(entry["split"]), entry["video"]
        assert entry["status"] == "ok" and entry["n_scored"] == str(NF - 8) and entry["n_missing"] == "0"
        ref = reference_frame_values(data, v, s, range(9, NF + 1),
                                     lambda k: pred / f"split{s}_results" / "avad" / v / f"pred_sal_{k:06d}.jpg")
        mine = [r for r in rows if r["split"] == str(s) and r["video"] == v]
        assert [int(r["frame"]) for r in mine] == list(range(9, NF + 1))
        for r in mine:
            for m in P.PAPER_METRICS:
                assert close(float(r[m]), ref[int(r["frame"])][m]), (s, v, r["frame"], m)
        # frame 12 has no fixation: CC/NSS/AUCs NaN (dropped), SIM 0 (kept)
        r12 = next(r for r in mine if r["frame"] == "12")
        assert r12["cc"] == "nan" and r12["sauc"] == "nan" and float(r12["sim"]) == 0.0
        assert entry["n_cc"] == str(NF - 9) and entry["n_sim"] == str(NF - 8)
        m = {k: np.nanmean([ref[f][k] for f in ref]) for k in P.PAPER_METRICS}
        for k in P.PAPER_METRICS:
            assert close(float(entry[k]), m[k])
        means.append(m)
    for k in P.PAPER_METRICS:
        assert close(summary["scores"][k], np.mean([m[k] for m in means]))  # pooled over the 3 entries
        assert close(summary["per_split"]["1"][k], means[0][k])
    assert summary["complete"] and summary["n_listed"] == 3 and summary["aggregation"] == "pooled"
    md = (out / "summary.md").read_text()
    assert "| split | videos | CC | NSS | AUC-J | SIM | sAUC |" in md
    assert f"{summary['scores']['cc']:.4f}" in md
    assert "AVAD" in stdout and "CC" in stdout


def test_jobs_and_seed(tiny, tmp_path):
    data, pred = tiny
    base = ["--data-root", str(data), "--dataset", "avad", "--pred", str(pred), "--quiet", "--no-plots"]
    assert run_cli(base + ["--out", str(tmp_path / "j1")])[0] == 0
    assert run_cli(base + ["--out", str(tmp_path / "j2"), "--jobs", "2"])[0] == 0
    for f in ("per_frame.csv", "per_video.csv", "summary.json", "summary.md"):
        assert (tmp_path / "j1" / f).read_bytes() == (tmp_path / "j2" / f).read_bytes(), f
    assert run_cli(base + ["--out", str(tmp_path / "s1"), "--seed", "1", "--metrics", "auc_j,sauc"])[0] == 0
    a = read_csv(tmp_path / "j1" / "per_frame.csv")
    b = read_csv(tmp_path / "s1" / "per_frame.csv")
    assert any(x["sauc"] != y["sauc"] for x, y in zip(a, b) if x["sauc"] != "nan")
    assert list(b[0].keys()) == ["split", "video", "frame", "auc_j", "sauc", "pred_file"]


def test_single_split_and_diem_aggregation(tiny, tmp_path):
    data, pred = tiny
    rc, *_ = run_cli(["--data-root", str(data), "--dataset", "AVAD", "--pred", str(pred), "--split", "2",
                      "--out", str(tmp_path / "r"), "--quiet", "--no-plots"])
    assert rc == 0
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert s["splits"] == [2] and s["n_listed"] == 1 and s["scores"] == s["per_split"]["2"]
    # DIEM: one test list for all splits, score = mean of the split means
    diem = tmp_path / "diem"
    shutil.copytree(data / "annotations" / "AVAD", diem / "annotations" / "DIEM")
    (diem / "fold_lists").mkdir()
    (diem / "fold_lists" / "DIEM_list_test_fps.txt").write_text(f"vidA {NF} 30\nvidB {NF} 30\n")
    dpred = tmp_path / "dpred"
    for sp in (1, 2, 3):
        shutil.copytree(pred / "split1_results" / "avad", dpred / f"split{sp}_results" / "diem")
    rc, *_ = run_cli(["--data-root", str(diem), "--dataset", "diem", "--pred", str(dpred),
                      "--out", str(tmp_path / "rd"), "--quiet", "--no-plots"])
    assert rc == 0
    s = json.loads((tmp_path / "rd" / "summary.json").read_text())
    assert s["aggregation"] == "split_mean" and s["n_listed"] == 6
    for m in P.PAPER_METRICS:
        assert close(s["scores"][m], np.mean([s["per_split"][str(k)][m] for k in (1, 2, 3)]), 1e-12)


def test_avsal_layout_all_frames_and_vinet(tiny, tmp_path):
    data, _ = tiny
    pred = tmp_path / "avsal_out"
    for vi, v in enumerate(("vidA", "vidB")):
        (pred / v / "maps").mkdir(parents=True)
        for k in range(1, NF + 1):  # avsal predict: maps/%06d.png, 1-based decoded frame
            Image.fromarray(pred_map(50 * vi + k)).save(pred / v / "maps" / f"{k:06d}.png")
    out = tmp_path / "r"
    rc, *_ = run_cli(["--data-root", str(data), "--dataset", "AVAD", "--pred", str(pred), "--frames", "all",
                      "--out", str(out), "--quiet", "--no-plots"])
    assert rc == 0
    pv = read_csv(out / "per_video.csv")
    assert [r["n_scored"] for r in pv] == [str(NF)] * 3 and {r["layout"] for r in pv} == {"avsal"}
    # ViNet protocol: resize only, every frame by default
    out2 = tmp_path / "rv"
    rc, *_ = run_cli(["--data-root", str(data), "--dataset", "AVAD", "--pred", str(pred), "--protocol", "vinet",
                      "--split", "1", "--out", str(out2), "--quiet", "--no-plots"])
    assert rc == 0
    rows = read_csv(out2 / "per_frame.csv")
    assert [int(r["frame"]) for r in rows] == list(range(1, NF + 1))
    ref = reference_frame_values(data, "vidA", 1, range(1, NF + 1),
                                 lambda k: pred / "vidA" / "maps" / f"{k:06d}.png", protocol="vinet")
    for r in rows:
        for m in P.PAPER_METRICS:
            assert close(float(r[m]), ref[int(r["frame"])][m]), (r["frame"], m)


def test_pattern_layout_and_missing_frames(tiny, tmp_path, capsys):
    data, _ = tiny
    pred = tmp_path / "p"
    for v in ("vidA", "vidB"):
        (pred / v).mkdir(parents=True)
        for k in range(1, NF + 1):
            if v == "vidB" and k in (10, 11, 15):
                continue  # missing predictions
            Image.fromarray(pred_map(k)).save(pred / v / f"{k - 1:04d}.png")  # 0-based numbering
    out = tmp_path / "r"
    rc, _, err = run_cli(["--data-root", str(data), "--dataset", "AVAD", "--pred", str(pred),
                          "--pattern", "%04d.png", "--first-index", "0", "--out", str(out), "--quiet",
                          "--no-plots"], capsys)
    assert rc == 1  # partial: reported, not a crash
    assert "3 frames without prediction in 1 videos" in err
    pv = {r["video"]: r for r in read_csv(out / "per_video.csv")}
    assert pv["vidB"]["n_missing"] == "3" and pv["vidB"]["missing_frames"] == "10-11,15"
    assert pv["vidB"]["n_scored"] == str(NF - 8 - 3) and pv["vidA"]["n_missing"] == "0"
    s = json.loads((out / "summary.json").read_text())
    assert s["problems"]["missing_frames"] == 3 and s["complete"]  # every video still has values
    assert "without prediction" in (out / "summary.md").read_text() or "no prediction" in (out / "summary.md").read_text()
    rc, *_ = run_cli(["--data-root", str(data), "--dataset", "AVAD", "--pred", str(pred), "--pattern", "%04d.png",
                      "--first-index", "0", "--out", str(tmp_path / "r2"), "--quiet", "--no-plots", "--strict"])
    assert rc == 2


def test_list_prediction_frames(tmp_path):
    d = tmp_path / "v"
    d.mkdir()
    for name in ("pred_sal_000009.jpg", "pred_sal_000010.jpg", "notes.txt", "pred_sal_x.jpg", "other_11.jpg"):
        (d / name).write_bytes(b"")
    spec = R.PredictionSpec(str(tmp_path))
    layout, files = R.list_prediction_frames(d, spec)
    assert layout == "stavis" and sorted(files) == [9, 10, 11]
    (d / "maps").mkdir()
    (d / "maps" / "000001.png").write_bytes(b"")
    assert R.list_prediction_frames(d, spec)[0] == "avsal"
    (d / "frame_11.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="two prediction files for frame 11"):
        R.list_prediction_frames(d, R.PredictionSpec(str(tmp_path), layout="stavis"))
    for bad in ("%s.png", "frame.png", "%d_%d.png", "/abs/%d.png", "%5.png"):
        with pytest.raises(ValueError):
            R.check_pattern(bad)
    R.check_pattern("maps/%06d.jpg")
    R.check_pattern("f%%_%d.png")


def test_find_prediction_dir(tmp_path):
    ds = R.DATASETS["Coutrot1"]
    (tmp_path / "split2_results" / "coutrot1" / "clip1").mkdir(parents=True)
    (tmp_path / "clip1").mkdir()
    assert R.find_prediction_dir(tmp_path, ds, 2, "clip1") == tmp_path / "split2_results" / "coutrot1" / "clip1"
    assert R.find_prediction_dir(tmp_path, ds, 1, "clip1") == tmp_path / "clip1"
    assert R.find_prediction_dir(tmp_path, ds, 1, "clip9") is None


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------


def _copy(tiny, tmp_path):
    data, pred = tiny
    d = tmp_path / "data"
    shutil.copytree(data, d)
    return d, pred


def _args(data, pred, out, *extra):
    return ["--data-root", str(data), "--dataset", "AVAD", "--pred", str(pred), "--out", str(out), "--quiet",
            "--no-plots", *extra]


def test_bad_root_dataset_and_usage(tiny, tmp_path, capsys):
    data, pred = tiny
    rc, _, err = run_cli(_args(tmp_path / "nowhere", pred, tmp_path / "o"), capsys)
    assert rc == 2 and str(tmp_path / "nowhere") in err and "not a folder" in err
    rc, _, err = run_cli(_args(tmp_path, pred, tmp_path / "o"), capsys)
    assert rc == 2 and "no 'annotations' folder" in err
    rc, _, err = run_cli(["--data-root", str(data), "--dataset", "DHF1K", "--pred", str(pred),
                          "--out", str(tmp_path / "o"), "--quiet"], capsys)
    assert rc == 2 and "unknown dataset 'DHF1K'" in err and "AVAD" in err
    rc, _, err = run_cli(["--data-root", str(data), "--dataset", "SumMe", "--pred", str(pred),
                          "--out", str(tmp_path / "o"), "--quiet"], capsys)
    assert rc == 2 and "SumMe" in err  # no annotations/SumMe folder
    rc, _, err = run_cli(_args(data, pred, tmp_path / "o", "--metrics", "cc,emd"), capsys)
    assert rc == 2 and "unknown metric 'emd'" in err
    rc, _, err = run_cli(_args(data, pred, tmp_path / "o", "--pattern", "frame.png"), capsys)
    assert rc == 2 and "integer field" in err
    rc, _, err = run_cli(_args(data, tmp_path / "nopred", tmp_path / "o"), capsys)
    assert rc == 2 and "prediction folder not found" in err
    rc, _, err = run_cli(_args(data, tmp_path, tmp_path / "o2"), capsys)  # a folder without any prediction
    assert rc == 2 and "no prediction folder for any" in err
    (tmp_path / "afile").write_text("x")
    rc, _, err = run_cli(_args(data, pred, tmp_path / "afile"), capsys)
    assert rc == 2 and "afile" in err


def test_bad_fold_lists(tiny, tmp_path, capsys):
    data, pred = _copy(tiny, tmp_path)
    (data / "fold_lists" / "AVAD_list_test_2_fps.txt").unlink()
    rc, _, err = run_cli(_args(data, pred, tmp_path / "o"), capsys)
    assert rc == 2 and "AVAD_list_test_2_fps.txt" in err and "not found" in err
    (data / "fold_lists" / "AVAD_list_test_2_fps.txt").write_text("vidB 20\n")
    rc, _, err = run_cli(_args(data, pred, tmp_path / "o"), capsys)
    assert rc == 2 and "line 1" in err
    # a fold list naming a video that is not there: reported skip, the others are scored
    (data / "fold_lists" / "AVAD_list_test_2_fps.txt").write_text(f"vidB {NF} 25\nvidZ {NF} 25\n")
    rc, _, err = run_cli(_args(data, pred, tmp_path / "o"), capsys)
    assert rc == 1 and "vidZ" in err
    pv = {r["video"]: r for r in read_csv(tmp_path / "o" / "per_video.csv")}
    assert pv["vidZ"]["status"] == "failed" and pv["vidB"]["status"] == "ok"
    assert str(data / "annotations" / "AVAD" / "vidZ") in pv["vidZ"]["error"] and "not found" in err
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert not s["complete"] and s["n_videos"]["cc"] == 3 and s["n_listed"] == 4
    assert "Partial result" in (tmp_path / "o" / "summary.md").read_text()
    rc, *_ = run_cli(_args(data, pred, tmp_path / "o3", "--strict"))
    assert rc == 2


def test_fold_list_reader(tmp_path):
    p = tmp_path / "l.txt"
    p.write_text("V32_Dancers 202 28.666571\r\n\n  V6_Basketball1\t193\t23.976024  \n")
    assert R.read_fold_list(p) == [R.FoldEntry("V32_Dancers", 202, 28.666571),
                                   R.FoldEntry("V6_Basketball1", 193, 23.976024)]
    for text, msg in (("a 10\n", "line 1"), ("a 10 25\nb x 25\n", "line 2"), ("a 0 25\n", "line 1"), ("\n", "empty")):
        p.write_text(text)
        with pytest.raises(InputError, match=msg) as e:
            R.read_fold_list(p)
        assert e.value.path == str(p)
    with pytest.raises(InputError, match="not found"):
        R.read_fold_list(tmp_path / "none.txt")


@pytest.mark.parametrize("what", ["mat", "jpg", "size", "pred", "missing_mat"])
def test_corrupt_files_name_the_file(tiny, tmp_path, capsys, what):
    data, pred = _copy(tiny, tmp_path)
    vid = data / "annotations" / "AVAD" / "vidB"
    if what == "mat":
        bad = vid / "fixMap_00005.mat"
        bad.write_bytes(bad.read_bytes()[:100])
    elif what == "missing_mat":
        bad = vid / "fixMap_00020.mat"
        bad.unlink()
    elif what == "jpg":
        bad = vid / "maps" / "eyeMap_00010.jpg"
        bad.write_bytes(bad.read_bytes()[:200])
    elif what == "size":
        bad = vid / "maps" / "eyeMap_00011.jpg"
        Image.fromarray(np.zeros((H + 1, W), np.uint8)).save(bad)
    else:
        p2 = tmp_path / "pred"
        shutil.copytree(pred, p2)
        pred = p2
        bad = pred / "split2_results" / "avad" / "vidB" / "pred_sal_000013.jpg"
        bad.write_text("not an image")
    rc, _, err = run_cli(_args(data, pred, tmp_path / "o"), capsys)
    assert rc == 1, err
    assert str(bad) in err
    pv = {r["video"]: r for r in read_csv(tmp_path / "o" / "per_video.csv")}
    assert pv["vidB"]["status"] == "failed" and str(bad) in pv["vidB"]["error"]
    assert pv["vidA"]["status"] == "ok"
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["n_videos"]["cc"] == 2 and not s["complete"]  # vidB excluded, not scored as 0


def test_readers_errors(tmp_path):
    p = tmp_path / "x.mat"
    scipy.io.savemat(p, {"other": np.zeros((3, 3))})
    with pytest.raises(InputError, match="has no variable 'eyeMap'.*other"):
        R.read_mat_map(p)
    scipy.io.savemat(p, {"eyeMap": np.zeros((2, 3, 4))})
    with pytest.raises(InputError, match="2-D"):
        R.read_mat_map(p)
    q = tmp_path / "rgb.png"
    a = np.zeros((4, 4, 3), np.uint8)
    a[..., 0] = 200
    Image.fromarray(a).save(q)
    with pytest.raises(InputError, match="differing channels"):
        R.read_image_map(q)
    assert R.read_prediction(q)[0, 0] == 200 / 255  # predictions: channel 1, like eval_*.m
    np.save(tmp_path / "f.npy", np.full((3, 4), 0.25, np.float32))
    assert R.read_prediction(tmp_path / "f.npy").dtype == np.float64
    with pytest.raises(InputError, match="file not found"):
        R.read_prediction(tmp_path / "none.png")


def test_video_ground_truth_union_and_values(tmp_path):
    d = tmp_path / "v"
    (d / "maps").mkdir(parents=True)
    a = np.zeros((4, 6))
    a[1, 2] = 1
    b = np.zeros((4, 6))
    b[3, 5] = 1
    for k, m in ((1, a), (2, b)):
        scipy.io.savemat(d / f"fixMap_{k:05d}.mat", {"eyeMap": m})
    gt = R.VideoGroundTruth(d, 2)
    f1 = gt.fixations(1)
    assert f1.dtype == np.uint8 and f1[1, 2] == 1 and f1.sum() == 1
    assert np.array_equal(gt.union, (a + b) > 0)
    assert np.array_equal(P.other_map(gt.union, f1), b > 0)  # the other frames' fixations only
    # non-binary maps keep their values (and eval_*.m's ``== 1`` test)
    scipy.io.savemat(d / "fixMap_00002.mat", {"eyeMap": 2 * b})
    gt = R.VideoGroundTruth(d, 2)
    assert gt.fixations(2).dtype == np.float64 and gt.fixations(2)[3, 5] == 2
    with pytest.raises(InputError, match="fixMap_00003.mat"):
        R.VideoGroundTruth(d, 3)
    scipy.io.savemat(d / "fixMap_00002.mat", {"eyeMap": np.zeros((5, 6))})
    with pytest.raises(InputError, match="differs from frame 1"):
        R.VideoGroundTruth(d, 2)


def test_cli_metrics_and_labels_come_from_the_table(tiny, tmp_path, capsys, monkeypatch):
    """``--metrics`` is parsed by the table's aliases; report and console labels are the table's."""
    import dataclasses

    data, pred = tiny
    base = ["--data-root", str(data), "--dataset", "avad", "--pred", str(pred), "--quiet", "--no-plots",
            "--split", "1"]
    monkeypatch.setitem(M.METRICS, "kld", dataclasses.replace(M.METRICS["kld"], label="KL-test"))
    out = tmp_path / "r"
    rc, stdout, err = run_cli(base + ["--out", str(out), "--metrics", "KL, auc_borji,similarity,kldiv"], capsys)
    assert rc == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["scores"]) == ["kld", "auc_b", "sim"]
    assert summary["labels"] == {"kld": "KL-test", "auc_b": "AUC-B", "sim": "SIM"}
    assert "| KL-test | AUC-B | SIM |" in (out / "summary.md").read_text()
    assert "KL-test" in stdout
    rc, _, err = run_cli(base + ["--out", str(tmp_path / "bad"), "--metrics", "cc,emd"], capsys)
    assert rc == 2 and "unknown metric 'emd'" in err and all(n in err for n in M.METRICS)
    p = argparse.ArgumentParser(prog="avsal")
    command.add_parser(p.add_subparsers(dest="command"))
    helptext = " ".join(p._subparsers._group_actions[0].choices["evaluate"].format_help().split())
    assert all(n in helptext for n in M.METRICS)
