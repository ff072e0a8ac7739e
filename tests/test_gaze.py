"""avsal.evaluate.gaze: raw gaze readers, I-VT, per-frame fixation maps, references, ``evaluate --gaze``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avsal import metrics as M
from avsal.cli import main
from avsal.errors import InputError
from avsal.evaluate import gaze as G
from avsal.evaluate.protocol import video_rng
from avsal.io.write import write_png
from avsal.synth import write_clip
from conftest import SHARED

ANDERSSON = SHARED / "eyetracking" / "video_andersson" if SHARED is not None else None
DHF1K = SHARED / "eyetracking" / "video_dhf1k_0601" if SHARED is not None else None


def _csv(path, rows, header="viewer,t_s,x_px,y_px,event"):
    path.write_text(header + "\n" + "".join(",".join(str(v) for v in r) + "\n" for r in rows))
    return path


# --------------------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------------------


def test_csv_reader_labels_mapping_and_errors(tmp_path):
    p = _csv(tmp_path / "g.csv", [["b", 0.00, 110, 60, "fixation"], ["a", 0.02, 20, 30, 1], ["a", 0.00, 10, 30, "1"],
                                  ["a", 0.04, "", "", "lost"], ["b", 0.02, 300, 60, "saccade"],
                                  ["b", 0.04, 112, 62, "pursuit"]])
    r = G.read_gaze_csv(p, size=(100, 200))
    assert r.viewer_ids == ["a", "b"] and r.events_from == "file" and r.name == "g"
    a, b = r.viewers
    assert np.allclose(a.t, [0, 0.02, 0.04]) and np.allclose(a.x[:2], [10, 20])  # sorted by time
    assert np.isnan(a.x[2]) and a.event.tolist() == [G.FIXATION, G.FIXATION, G.LOST]
    assert b.event.tolist() == [G.FIXATION, G.SACCADE, G.PURSUIT]
    assert r.sample_rate == pytest.approx(50.0)
    # screen -> video: centred at native size on 400x300: offset (100, 100)
    m = G.ScreenMapping.centred((400, 300), (100, 200))
    assert (m.offset_x, m.offset_y, m.scale_x) == (100.0, 100.0, 1.0)
    r2 = G.read_gaze_csv(p, mapping=m)
    assert np.allclose(r2.viewers[1].x[[0, 2]], [10, 12]) and np.allclose(r2.viewers[1].y[0], -40)
    # scaled to fit: 200x100 on 400x300 -> scale 2, offset (0, 50)
    mf = G.ScreenMapping.centred((400, 300), (100, 200), fit=True)
    assert (mf.offset_x, mf.offset_y, mf.scale_x) == (0.0, 50.0, 2.0)
    assert np.allclose(mf.to_video(np.array([400.0]), np.array([250.0])), [[200.0], [100.0]])
    # errors name the file and the problem
    with pytest.raises(InputError, match="header lacks") as e:
        G.read_gaze_csv(_csv(tmp_path / "h.csv", [[1, 2, 3]], header="who,t,x"))
    assert e.value.path == str(tmp_path / "h.csv")
    with pytest.raises(InputError, match="line 2: t_s, x_px, y_px must be numbers"):
        G.read_gaze_csv(_csv(tmp_path / "n.csv", [["a", "zero", 1, 2, 1]]))
    with pytest.raises(InputError, match="unknown event 'wink'"):
        G.read_gaze_csv(_csv(tmp_path / "e.csv", [["a", 0, 1, 2, "wink"]]))
    with pytest.raises(InputError, match="I-VT needs px_per_degree"):
        G.read_gaze_csv(_csv(tmp_path / "u.csv", [["a", 0, 1, 2]], header="viewer,t_s,x_px,y_px"))
    with pytest.raises(InputError, match="not found"):
        G.load_gaze(tmp_path / "none.csv")


def _trace(rate=500.0, seed=0):
    """Fixation at (100, 100) for 0.3 s, a 40 ms saccade to (400, 100), fixation for 0.36 s."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.7 * rate)) / rate
    x = np.where(t < 0.3, 100.0, np.where(t < 0.34, 100 + (t - 0.3) / 0.04 * 300, 400.0))
    y = np.full_like(t, 100.0)
    x += rng.normal(0, 0.3, t.size)
    y += rng.normal(0, 0.3, t.size)
    truth = np.where((t >= 0.3) & (t < 0.34), G.SACCADE, G.FIXATION)
    return t, x, y, truth


def test_ivt_on_synthetic_trace(tmp_path):
    t, x, y, truth = _trace()
    ev = G.ivt_classify(t, x, y, threshold=30.0, px_per_degree=30.0)  # 30 deg/s = 900 px/s; saccade 7500 px/s
    edge = np.zeros(t.size, bool)
    for b in (0.3, 0.34):  # the 20 ms velocity window blurs the boundaries by 10 ms
        edge |= np.abs(t - b) <= 0.011
    assert np.array_equal(ev[~edge], truth[~edge])
    assert (ev == G.SACCADE).sum() == pytest.approx(20 + 10, abs=6)
    # the same threshold in px/s and a NaN gap
    x2 = x.copy()
    x2[50:60] = np.nan
    ev2 = G.ivt_classify(t, x2, y, threshold=900.0)
    assert np.all(ev2[50:60] == G.LOST) and np.array_equal(ev2[~edge & ~np.isnan(x2)][:40], truth[:40])
    # minimum fixation duration: a 100 ms threshold keeps both long fixations
    ev3 = G.ivt_classify(t, x, y, threshold=900.0, min_fixation_s=0.1)
    assert not np.any(ev3 == G.UNDEFINED)
    assert np.all(G.ivt_classify(t, x, y, threshold=900.0, min_fixation_s=0.5) != G.FIXATION)
    # through the CSV reader (no event column) and into per-frame points at 25 fps
    rows = [["v", f"{a:.4f}", f"{b:.3f}", f"{c:.3f}"] for a, b, c in zip(t, x, y)]
    r = G.read_gaze_csv(_csv(tmp_path / "raw.csv", rows, header="viewer,t_s,x_px,y_px"), px_per_degree=30.0)
    assert r.events_from == "ivt" and r.meta["ivt"]["unit"] == "deg/s"
    ff = G.fixation_maps(r, G.video_frame_times(17, 25.0), (200, 500))
    assert np.allclose(ff.frame_points(2), [[100, 100]], atol=0.5)  # frame 2: 0.04-0.08 s
    assert np.allclose(ff.frame_points(12), [[400, 100]], atol=0.5)  # frame 12: 0.44-0.48 s
    # frame 8 (0.28-0.32 s) holds the end of the first fixation only; frame 9 (0.32-0.36) the landing
    assert np.allclose(ff.frame_points(8), [[100, 100]], atol=1.0)
    assert all(p[0] > 390 for p in ff.frame_points(9))


def test_fixation_maps_frames_events_and_viewers():
    # viewer a: one fixation spanning frames 1-2, a saccade, a second fixation in frame 2, a point outside
    t = np.array([0.00, 0.05, 0.09, 0.11, 0.13, 0.15, 0.17, 0.22])
    a = G.ViewerGaze("a", t, np.array([10, 12, 14, 16, 40, 50, 52, 500.0]), np.array([5, 5, 5, 5, 9, 20, 22, 5.0]),
                     np.array([1, 1, 1, 1, 2, 1, 1, 1], np.int8))
    b = G.ViewerGaze("b", np.array([0.01, 0.12]), np.array([30.0, np.nan]), np.array([30.0, np.nan]),
                     np.array([4, -1], np.int8))
    rec = G.GazeRecording("syn", (40, 60), [a, b], px_per_degree=10.0)
    ff = G.fixation_maps(rec, [0.0, 0.1, 0.2])  # 3 frames of 0.1 s
    assert ff.counts().tolist() == [[1, 1], [2, 0], [0, 0]]
    assert np.allclose(ff.points[0][0], [[12, 5]])  # mean of samples 0-2 (frame 1 part of fixation 1)
    pts = ff.points[1][0]
    assert np.allclose(pts[np.argsort(pts[:, 0])], [[16, 5], [51, 21]])  # fixation 1's tail, fixation 2
    assert np.allclose(ff.points[0][1], [[30, 30]])  # pursuit counts by default
    assert ff.default_sigma == pytest.approx(10.0)  # 1 degree
    assert G.fixation_maps(rec, [0.0, 0.1, 0.2], events=(G.FIXATION,)).counts()[0].tolist() == [1, 0]
    fm = ff.fixation_map(2)
    assert fm.dtype == np.uint8 and fm.sum() == 2 and fm[5, 16] == 1 and fm[21, 51] == 1
    assert ff.fixation_map(1, exclude=0).sum() == 1 and ff.fixation_map(1, viewers=[0])[5, 12] == 1
    d = ff.density_map(1, sigma=3.0, viewers=[1])
    assert d.max() == pytest.approx(1.0, abs=0.02) and np.unravel_index(d.argmax(), d.shape) in {(29, 29), (29, 30),
                                                                                               (30, 29), (30, 30)}
    assert ff.as_array().shape == (3, 40, 60) and ff.union().sum() == 4
    assert ff.as_array([1]).sum() == 1 and ff.as_array([1])[0, 30, 30] == 1
    with pytest.raises(ValueError, match="strictly increasing"):
        G.fixation_maps(rec, [0.0, 0.0])
    with pytest.raises(IndexError):
        ff.fixation_map(4)


def test_load_gaze_reads_diem_as_a_recording(tmp_path):
    from avsal.evaluate.readers import load_diem_video
    from test_readers import _diem_file

    ev = tmp_path / "clip_100x50" / "event_data"
    _diem_file(ev / "s01.asc_1_clip_100x50.txt",
               [[1, 600.7, 458.2, 1500, 1, 0, 0, 0, 1], [2, 100.0, 100.0, 1500, 1, 0, 0, 0, -1],
                [3, 640.0, 480.0, 1500, 2, 640, 480, 1, 1], [4, 620.0, 470.0, 1500, 0, 0, 0, 0, 1]])
    _diem_file(ev / "s02.asc_3_clip_100x50.txt", [[1, 689.9, 504.9, 1500, 1, 0, 0, 0, 0]])
    rec = G.load_gaze(tmp_path / "clip_100x50")
    dg = load_diem_video(tmp_path / "clip_100x50")
    assert rec.size == (50, 100) and rec.viewer_ids == dg.viewers and rec.sample_rate == 30.0
    assert rec.viewers[0].event.tolist() == [G.FIXATION, G.FIXATION, G.SACCADE, G.BLINK]
    ff = G.fixation_maps(rec, G.video_frame_times(dg.nframes, 30.0), events=(G.FIXATION,))
    for k in range(1, dg.nframes + 1):
        assert np.allclose(np.sort(ff.frame_points(k), axis=0), np.sort(dg.points(k), axis=0))
        assert np.array_equal(ff.fixation_map(k), dg.fixation_map(k))
        assert np.allclose(ff.density_map(k, 5.0), dg.density_map(k, 5.0))
    # evaluate --gaze on a DIEM folder needs no --video (size from the name, 30 fps)
    out = tmp_path / "rep"
    assert main(["evaluate", "--gaze", str(tmp_path / "clip_100x50"), "--out", str(out), "--events", "fixation",
                 "--metrics", "nss", "--quiet"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["format"] == "diem" and s["frames"] == 4 and s["fps"] == 30.0 and s["sigma_px"] == 40.0
    assert s["n_frames_scored"] == 1 and s["scores"]["centre"]["nss"] == pytest.approx(
        M.nss(G.centre_gaussian((50, 100)), dg.fixation_map(1)))


# --------------------------------------------------------------------------------------
# references
# --------------------------------------------------------------------------------------


def _synthetic_recording(agree: bool, n_viewers=4, n_frames=12, hw=(48, 64), seed=1):
    """Viewers at 100 Hz: all on one moving target (agree) or each on its own random spots."""
    rng = np.random.default_rng(seed)
    h, w = hw
    t = np.arange(n_frames * 4) / 100.0  # 4 samples per 25 fps frame
    target = np.stack([10 + 40 * t / t[-1], 12 + 20 * t / t[-1]], 1)
    viewers = []
    for v in range(n_viewers):
        if agree:
            p = target + rng.normal(0, 0.5, target.shape)
        else:
            spots = rng.uniform([2, 2], [w - 2, h - 2], size=(n_frames, 2))
            p = np.repeat(spots, 4, axis=0)
        viewers.append(G.ViewerGaze(f"v{v}", t, p[:, 0], p[:, 1], np.full(t.size, G.FIXATION, np.int8)))
    rec = G.GazeRecording("agree" if agree else "disagree", hw, viewers)
    return G.fixation_maps(rec, G.video_frame_times(n_frames, 25.0))


def test_inter_observer_agree_vs_disagree():
    cfg = G.GazeScoreConfig(metrics=("nss", "auc_j", "cc", "sim"), sigma=3.0)
    agree = G.score_against_gaze(None, _synthetic_recording(True), cfg, name="a")
    dis = G.score_against_gaze(None, _synthetic_recording(False), cfg, name="d")
    assert list(agree.means) == ["centre", "centre_per_viewer", "inter_observer"]
    io_a, io_d = agree.means["inter_observer"], dis.means["inter_observer"]
    assert io_a["nss"] > 5 and io_a["auc_j"] > 0.98 and io_a["cc"] > 0.8
    assert io_d["nss"] < 1 and io_d["auc_j"] < min(0.8, io_a["auc_j"] - 0.2) and io_d["cc"] < 0.2
    assert agree.n_targets["inter_observer"] == [4] * 12
    # agreeing viewers beat the centre prior; a random crowd does not beat it by much
    assert io_a["nss"] > agree.means["centre_per_viewer"]["nss"] + 3


def test_centre_reference_equals_direct_metric_calls():
    ff = _synthetic_recording(False, n_frames=5)
    names = ("cc", "nss", "sim", "kld", "auc_j_nojitter", "auc_j")
    s = G.score_against_gaze(None, ff, G.GazeScoreConfig(metrics=names, sigma=4.0, centre_sigma=(0.2, 0.3), seed=7),
                             name="syn")
    c = G.centre_gaussian(ff.size, (0.2, 0.3))
    gen = video_rng(7, "syn/centre", 0)  # the centre row's own generator, drawn frame by frame
    for i, k in enumerate(range(1, 6)):
        fix, dens = ff.fixation_map(k), ff.density_map(k, 4.0)
        assert s.values["centre"]["cc"][i] == pytest.approx(M.cc(c, dens), abs=1e-12)
        assert s.values["centre"]["nss"][i] == pytest.approx(M.nss(c, fix), abs=1e-12)
        assert s.values["centre"]["sim"][i] == pytest.approx(M.sim(c, dens), abs=1e-12)
        assert s.values["centre"]["kld"][i] == pytest.approx(M.kld(c, dens), abs=1e-12)
        assert s.values["centre"]["auc_j_nojitter"][i] == pytest.approx(M.auc_judd(c, fix, jitter=False), abs=1e-12)
        assert s.values["centre"]["auc_j"][i] == pytest.approx(M.auc_judd(c, fix, rng=gen), abs=1e-12)
    assert s.means["centre"]["nss"] == pytest.approx(np.mean(s.values["centre"]["nss"]))
    # a model that is the crowd's density beats the centre; same seed -> same numbers
    dens = {k: ff.density_map(k, 4.0) for k in range(1, 6)}
    m1 = G.score_against_gaze(dens, ff, G.GazeScoreConfig(metrics=("nss", "auc_j"), sigma=4.0, protocol="vinet"))
    m2 = G.score_against_gaze(dens, ff, G.GazeScoreConfig(metrics=("nss", "auc_j"), sigma=4.0, protocol="vinet"))
    assert m1.means == m2.means
    assert m1.means["model"]["nss"] > m1.means["centre"]["nss"] + 2


# --------------------------------------------------------------------------------------
# avsal evaluate --gaze (synthetic, end to end)
# --------------------------------------------------------------------------------------


def test_evaluate_gaze_cli_csv(tmp_path, capsys):
    hw, n = (48, 64), 10
    clip = write_clip(tmp_path / "clip.mp4", lambda i: np.full((*hw, 3), 80, np.uint8), n, 25.0)
    # 3 viewers on a target at video (40, 20), given in screen px on a 164x148 screen (offset 50, 50)
    rows = [[f"v{v}", f"{t:.3f}", 90 + v * 0.3, 70, "fixation"] for v in range(3) for t in np.arange(0, 0.4, 0.01)]
    gz = _csv(tmp_path / "gaze.csv", rows)
    pred = tmp_path / "pred" / "clip" / "maps"
    pred.mkdir(parents=True)
    yy, xx = np.mgrid[0:hw[0], 0:hw[1]]
    good = np.exp(-((xx - 40) ** 2 + (yy - 20) ** 2) / 50.0)
    for k in range(1, n):  # frame 10 missing
        write_png(pred / f"{k:06d}.png", good)
    out = tmp_path / "rep"
    rc = main(["evaluate", "--gaze", str(gz), "--video", str(clip), "--pred", str(tmp_path / "pred"), "--out",
               str(out), "--screen", "164x148", "--sigma", "3", "--quiet"])
    assert rc == 1  # partial: frame 10 has no prediction
    s = json.loads((out / "summary.json").read_text())
    assert s["n_frames_scored"] == 9 and s["frames_missing_prediction"] == [10] and s["sigma_px"] == 3.0
    assert s["mapping"]["offset_x"] == 50.0 and s["viewers"] == ["v0", "v1", "v2"]
    sc = s["scores"]
    assert set(sc) == set(G.REFERENCES)
    assert sc["model"]["nss"] > sc["centre"]["nss"] and sc["inter_observer"]["nss"] > 5
    assert (out / "per_frame.csv").read_text().count("\nmodel,") == 9
    assert "| inter_observer |" in (out / "summary.md").read_text()
    assert "inter_observer" in capsys.readouterr().out
    # references only (no --pred), and bad usage
    assert main(["evaluate", "--gaze", str(gz), "--video", str(clip), "--out", str(out), "--screen", "164x148",
                 "--quiet"]) == 0
    assert "model" not in json.loads((out / "summary.json").read_text())["scores"]
    assert main(["evaluate", "--gaze", str(gz), "--out", str(out)]) == 2
    assert "--video is required" in capsys.readouterr().err
    assert main(["evaluate", "--out", str(out)]) == 2


# --------------------------------------------------------------------------------------
# shared real gaze (skipped when ../shared/data is absent)
# --------------------------------------------------------------------------------------


@pytest.mark.skipif(ANDERSSON is None or not ANDERSSON.is_dir(), reason="shared Andersson gaze data absent")
@pytest.mark.parametrize("video,viewers,frames", [("BergoDalbana", ["TH34", "UH21", "UH47"], 203),
                                                  ("triple_jump", ["TL30", "UL23", "UL27", "UL31"], 143)])
def test_andersson_real_gaze(video, viewers, frames):
    from avsal.io.video import probe

    info = probe(ANDERSSON / "videos" / f"{video}.avi")
    assert (info.height, info.width, info.fps) == (576, 720, 25.0)
    rec = G.load_gaze(ANDERSSON / "gaze", video=video, size=(576, 720))
    assert rec.viewer_ids == viewers and rec.sample_rate == 500.0
    assert (rec.mapping.offset_x, rec.mapping.offset_y) == (152.0, 96.0)
    assert rec.px_per_degree == pytest.approx(31.51, abs=0.01)  # 0.67 m, 1024 px over 0.38 m
    assert abs(rec.duration - frames / 25.0) < 0.2  # recordings span the clip
    ra = G.load_gaze(ANDERSSON / "gaze", video=video, size=(576, 720), coder="RA")
    assert ra.meta["coders"] == {v: "RA" for v in viewers}
    ff = G.fixation_maps(rec, G.video_frame_times(frames, 25.0))
    c = ff.counts()
    assert (c > 0).mean() > 0.75  # most viewers fixate (or pursue) in most frames
    s = G.score_against_gaze(None, ff, G.GazeScoreConfig(metrics=("nss", "auc_j", "cc"), frame_step=7), name=video)
    io, ce = s.means["inter_observer"], s.means["centre_per_viewer"]
    assert io["nss"] > ce["nss"] + 1 and io["auc_j"] > ce["auc_j"] and io["cc"] > ce["cc"]
    assert ce["auc_j"] > 0.8  # the centre prior is strong on these clips
    with pytest.raises(InputError, match="no Andersson gaze file"):
        G.load_gaze(ANDERSSON / "gaze", video="nope", size=(576, 720))
    with pytest.raises(InputError, match="several videos"):
        G.load_andersson(ANDERSSON / "gaze", size=(576, 720))


@pytest.mark.skipif(DHF1K is None or not DHF1K.is_dir(), reason="shared DHF1K sample absent")
def test_dhf1k_sample_and_cli(tmp_path):
    import scipy.io

    fm = G.load_dhf1k(DHF1K)
    assert fm.nframes == 20 and fm.size == (360, 640) and not fm.per_viewer
    mat = scipy.io.loadmat(str(DHF1K / "fixation" / "maps" / "0001.mat"))["I"]
    assert np.array_equal(fm.fixation_map(1), (mat > 0).astype(np.uint8))
    s = G.score_against_gaze(None, fm, G.GazeScoreConfig(metrics=("nss", "auc_j")), name="0601")
    assert list(s.means) == ["centre"] and "no inter-observer" in s.notes[0]
    # the dataset's own density maps as predictions score near the top (CLI, --pattern layout)
    pred = tmp_path / "p"
    pred.mkdir()
    for k in range(1, 21, 2):
        write_png(pred / f"sal_{k:03d}.png", fm.density_map(k))
    out = tmp_path / "rep"
    rc = main(["evaluate", "--gaze", str(DHF1K), "--pred", str(pred), "--pattern", "sal_%03d.png", "--out", str(out),
               "--metrics", "cc,nss", "--quiet"])
    assert rc == 1  # even frames have no prediction
    sc = json.loads((out / "summary.json").read_text())["scores"]
    assert sc["model"]["cc"] > 0.95 and sc["model"]["nss"] > sc["centre"]["nss"]
    assert main(["evaluate", "--gaze", str(DHF1K), "--sigma", "3", "--out", str(out)]) == 2
