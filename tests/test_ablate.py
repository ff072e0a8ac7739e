"""``avsal ablate-audio``: audio conditions, lock-step runs, change measures, ground truth, resume, determinism."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from avsal import ablate
from avsal.ablate import (AblateOptions, GroundTruthOptions, assign_audio_sources, bootstrap_ci, derangement,
                          lockstep, map_change, run_ablation, silence_like, time_shifted, transplant)
from avsal.io.audio import AudioTrack, load_audio
from avsal.io.video import iter_frames
from avsal.models.base import AudioSpec, ClipSpec, Prediction
from avsal.synth import make_demo_clip

DEMO_HW = (144, 256)


# ----------------------------------------------------------------------------------------------------
# tiny test models (cheap, exact)
# ----------------------------------------------------------------------------------------------------

def _blob(h: int, w: int, cy: float, cx: float, sigma: float = 0.12) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    g = np.exp(-(((y + 0.5) / h - cy) ** 2 + ((x + 0.5) / w - cx) ** 2) / (2 * sigma ** 2))
    return (g / g.max()).astype(np.float32)


class LoudnessBlob:
    """Clip model (T = 1): a blob whose horizontal position follows the loudness at the frame time.

    ``encode`` is visual-only (the frame's mean brightness moves the blob vertically), declared with
    ``encode_uses_audio = False``; ``encoded`` counts the frames encoded.
    """

    name = "test-loudness-blob"
    clip = ClipSpec(length=1, anchor=0)
    audio = AudioSpec(sample_rate=16000, mix="mean")
    batch_size = 4
    encode_uses_audio = False

    def __init__(self, use_audio: bool = True):
        self.use_audio = use_audio
        self.encoded = 0

    def encode(self, frames, audio):
        self.encoded += len(frames)
        return [float(f.rgb.mean()) / 255.0 for f in frames]

    def decode(self, clips, audio, frame_hw):
        out = []
        for c in clips:
            loud = 0.0
            if self.use_audio and audio is not None:
                w = audio.window(c[0].time, 0.1)
                loud = float(np.sqrt(np.mean(np.square(w, dtype=np.float64))))
            out.append(_blob(18, 32, 0.3 + 0.4 * c[0].data, 0.15 + 0.7 * min(1.0, 4 * loud)))
        return np.stack(out)


class VisualOnly(LoudnessBlob):
    """The same model with the audio ignored in ``decode`` (still declares an AudioSpec)."""

    name = "test-visual-only"
    encode_uses_audio = True

    def __init__(self):
        super().__init__(use_audio=False)


class NoAudio:
    """A streaming model that declares no audio input (``audio = None``); counts its runs."""

    name = "test-no-audio"
    clip = None
    audio = None

    def __init__(self):
        self.runs = 0

    def stream(self, frames, audio):
        assert audio is None
        self.runs += 1
        for f in frames:
            if f.selected:
                yield Prediction(f.index, f.time, _blob(18, 32, 0.5, 0.2 + 0.6 * float(f.rgb.mean()) / 255.0))


# ----------------------------------------------------------------------------------------------------
# fixtures
# ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo clip (a disc hopping with beeps, one circling silently), 3 s at 144 x 256."""
    d = tmp_path_factory.mktemp("ablate_demo")
    path = d / "demo_small.mp4"
    scene = make_demo_clip(path, seconds=3.0, size=DEMO_HW)
    return path, scene


@pytest.fixture(scope="module")
def small_clips(tmp_path_factory):
    """Three 1.2 s demo clips with different beep times, 72 x 128."""
    d = tmp_path_factory.mktemp("ablate_small")
    out = []
    for k in range(3):
        p = d / f"clip{k}.mp4"
        make_demo_clip(p, seconds=1.2, size=(72, 128), seed=k + 1)
        out.append(str(p))
    return out


def _read_csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _row(rows, video, cond) -> dict:
    return next(r for r in rows if r["video"] == video and r["condition"] == cond)


def _stavis_gt(root: Path, scene, name: str, n_frames: int) -> Path:
    """A STAViS-layout ground truth whose viewers look at the disc that hops with the beeps."""
    import scipy.io
    from PIL import Image

    d = root / "annotations" / "Demo" / name
    (d / "maps").mkdir(parents=True)
    (root / "fold_lists").mkdir()
    (root / "fold_lists" / "Demo_list_test_1_fps.txt").write_text(f"{name} {n_frames} 25\n")
    h, w = scene.height, scene.width
    for k in range(1, n_frames + 1):
        cy, cx = scene.sync_disc_centre((k - 1) / scene.fps)
        fix = np.zeros((h, w), np.uint8)
        for dy, dx in ((0, 0), (-3, 2), (2, -4), (4, 3), (-2, -3)):
            fix[int(round(cy)) + dy, int(round(cx)) + dx] = 1
        scipy.io.savemat(d / f"fixMap_{k:05d}.mat", {"eyeMap": fix})
        dens = _blob(h, w, cy / h, cx / w, sigma=0.05)
        Image.fromarray(np.rint(255 * dens).astype(np.uint8)).save(d / "maps" / f"eyeMap_{k:05d}.jpg", quality=95)
    return root


# ----------------------------------------------------------------------------------------------------
# audio conditions
# ----------------------------------------------------------------------------------------------------

def test_derangement_never_pairs_a_video_with_itself():
    for n in range(2, 13):
        for seed in range(40):
            p = derangement(n, seed)
            assert sorted(p) == list(range(n))
            assert all(p[i] != i for i in range(n)), (n, seed, p)
            assert derangement(n, seed) == p  # seeded
    assert derangement(2, 0) == [1, 0]
    assert len({tuple(derangement(6, s)) for s in range(20)}) > 5  # the seed matters
    with pytest.raises(ValueError, match="at least 2"):
        derangement(1, 0)


def test_assign_audio_sources_skips_silent_videos_and_lone_ones():
    names = ["a", "b", "c", "d"]
    donors = assign_audio_sources(names, [True, False, True, True], seed=3)
    assert donors["b"] is None
    assert {donors["a"], donors["c"], donors["d"]} == {"a", "c", "d"}
    assert all(donors[n] != n for n in ("a", "c", "d"))
    assert assign_audio_sources(["a", "b"], [True, False], 0) == {"a": None, "b": None}


def test_condition_tracks_keep_length_rate_and_timeline():
    rate = 16000
    own = AudioTrack(np.linspace(-0.5, 0.5, 3 * rate, dtype=np.float32), rate, start_time=0.25)
    s = silence_like(own)
    assert s.samples.shape == own.samples.shape and not s.samples.any()
    assert (s.sample_rate, s.start_time) == (rate, 0.25)
    sh = time_shifted(own, 0.5)
    assert np.array_equal(sh.samples, np.roll(own.samples, 3 * rate // 2)) and sh.start_time == 0.25
    short = AudioTrack(np.arange(1, 8001, dtype=np.float32) / 8000, 8000, start_time=3.0)  # 1 s at 8 kHz
    tr = transplant(short, own)
    assert tr.samples.shape == own.samples.shape and (tr.sample_rate, tr.start_time) == (rate, 0.25)
    # resampled to 16 kHz (2 samples per donor sample), then looped: period 16000 samples
    assert np.allclose(tr.samples[:rate], tr.samples[rate:2 * rate])
    assert abs(float(tr.samples[8000]) - 0.5) < 0.01
    long_ = AudioTrack(np.arange(5 * rate, dtype=np.float32), rate)
    assert np.array_equal(transplant(long_, own).samples, long_.samples[:3 * rate])  # cut


# ----------------------------------------------------------------------------------------------------
# measures
# ----------------------------------------------------------------------------------------------------

def test_map_change_numbers():
    a = _blob(36, 64, 0.5, 0.25)
    same = map_change(a, a.copy(), (360, 640))
    assert same["mad"] == 0.0 and same["peak_shift_px"] == 0.0
    assert same["cc"] == pytest.approx(1.0, abs=1e-12) and abs(same["kld"]) < 1e-9
    b = _blob(36, 64, 0.5, 0.75)
    moved = map_change(a, b, (360, 640))
    assert moved["peak_shift_px"] == pytest.approx(320.0)  # 32 analysis px x 10 = half the width
    assert moved["cc"] < 0.2 and moved["kld"] > 1.0 and moved["mad"] > 0.1


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    v = [0.1, 0.4, 0.35, 0.2, 0.5, 0.3]
    m, lo, hi = bootstrap_ci(v, seed=1, n_boot=1000)
    assert m == pytest.approx(np.mean(v)) and lo < m < hi
    assert bootstrap_ci(v, seed=1, n_boot=1000) == (m, lo, hi)
    assert bootstrap_ci([0.0, 0.0, 0.0], 0) == (0.0, 0.0, 0.0)
    assert np.isnan(bootstrap_ci([0.3], 0)[1]) and bootstrap_ci([0.3], 0)[0] == 0.3
    assert np.isnan(bootstrap_ci([], 0)[0])


# ----------------------------------------------------------------------------------------------------
# lock step and reuse
# ----------------------------------------------------------------------------------------------------

def test_lockstep_decodes_once_and_shares_visual_encoding(small_clips):
    path = small_clips[0]
    own = load_audio(path, 16000, mix="mean")
    tracks = {"original": own, "silence": silence_like(own), "other": time_shifted(own)}
    decoded = []

    def frames():
        for f in iter_frames(path):
            decoded.append(f.index)
            yield f

    m = LoudnessBlob()
    out = list(lockstep(m, frames(), tracks, (72, 128)))
    n = len(decoded)
    assert decoded == list(range(n)) and len(out) == n  # each frame decoded once for the three runs
    assert m.encoded == n  # encode_uses_audio = False: one visual encoding per frame, shared
    v = VisualOnly()
    out2 = list(lockstep(v, iter_frames(path), tracks, (72, 128)))
    assert v.encoded == 3 * n  # encode may use audio: one per condition
    assert [o[0] for o in out2] == [o[0] for o in out]


# ----------------------------------------------------------------------------------------------------
# whole runs
# ----------------------------------------------------------------------------------------------------

def test_classic_av_demo_sound_moves_the_map_and_ground_truth(demo, tmp_path):
    """The demo clip: the beeps go with the left disc. Under silence classic-av's maps move, the hopping
    disc loses saliency, and the ground truth (viewers on that disc) scores lower; the original-audio
    scores equal `avsal evaluate`'s on `avsal predict`'s maps."""
    import h5py

    from avsal.evaluate.protocol import ProtocolConfig

    path, scene = demo
    gt_root = _stavis_gt(tmp_path / "gt", scene, "demo_small", 75)
    proto = ProtocolConfig(protocol="stavis", metrics=("cc", "nss", "auc_j", "sim", "sauc"))
    opts = AblateOptions(model="classic-av", fps=5, seed=0,
                         gt=GroundTruthOptions(str(gt_root), "Demo", protocol=proto))
    out = tmp_path / "out"
    run = run_ablation([str(path)], str(out), opts, progress=False, log=lambda m: None)
    assert run.done == [str(path)] and not run.failed
    rows = _read_csv(out / "ablation.csv")
    sil, oth = _row(rows, "demo_small", "silence"), _row(rows, "demo_small", "other")
    assert oth["audio"].startswith("own, circularly shifted by 1.50 s")
    for r in (sil, oth):
        assert int(r["frames"]) == 15
        assert float(r["cc_vs_original"]) < 0.985
        assert float(r["mad_vs_original"]) > 0.01
        assert float(r["kld_vs_original"]) > 0.01
        assert float(r["peak_threshold_px"]) == pytest.approx(0.05 * np.hypot(*DEMO_HW))
    # the disc that hops with the beeps holds less saliency under silence
    with h5py.File(out / "videos" / "demo_small" / "maps.h5") as f:
        times = f["times"][:]
        disc = {}
        for c in ("original", "silence"):
            m = f[c][:].astype(np.float64) / 255
            yy, xx = np.mgrid[0:DEMO_HW[0], 0:DEMO_HW[1]]
            vals = []
            for k, t in enumerate(times):
                cy, cx = scene.sync_disc_centre(t)
                vals.append(m[k][(yy - cy) ** 2 + (xx - cx) ** 2 <= (1.5 * scene.radius) ** 2].mean())
            disc[c] = float(np.mean(vals))
    assert disc["original"] - disc["silence"] > 0.03
    # ground truth: frames 9.. of the selected ones, paired scores, viewers on the sounding disc
    res = json.loads((out / "videos" / "demo_small" / "result.json").read_text())
    scored = [i for i, k in enumerate(res["frame_indices"]) if k + 1 >= 9]  # STAViS frames 9..nframes
    assert res["gt_frames"] == scored and len(scored) >= 12
    assert float(sil["delta_nss"]) < 0 and float(sil["delta_cc"]) < 0
    assert float(sil["nss"]) == pytest.approx(float(_row(rows, "demo_small", "original")["nss"]) +
                                              float(sil["delta_nss"]))
    summary = (out / "summary.md").read_text()
    assert "Against the ground truth" in summary and "| NSS |" in summary
    assert (out / "videos" / "demo_small" / "change.png").stat().st_size > 10000
    assert (out / "overlay_demo_small.mp4").stat().st_size > 1000
    from avsal.io.video import probe

    info = probe(out / "overlay_demo_small.mp4")
    assert (info.height, info.width) == (144, 512) and info.has_audio

    # parity with `avsal predict` + `avsal evaluate` on the original audio
    from avsal.evaluate.readers import PredictionSpec
    from avsal.evaluate.runner import VideoJob, run_jobs
    from avsal.predict import predict_video

    pred_root = tmp_path / "pred"
    predict_video(path, "classic-av", out_dir=str(pred_root), fps=5, overlay=False, keep_maps=False)
    job = VideoJob("Demo", 1, "demo_small", 75, str(gt_root / "annotations" / "Demo" / "demo_small"),
                   str(pred_root / "demo_small"), PredictionSpec(str(pred_root)), proto, seed=0)
    ev = run_jobs([job], progress=False)[0]
    assert ev.status == "ok", ev.error
    orig = _row(rows, "demo_small", "original")
    for m in ("cc", "nss", "auc_j", "sim", "sauc"):
        assert float(orig[m]) == pytest.approx(ev.means[m], abs=1e-12), m


def test_models_that_ignore_audio_show_exactly_zero_change(small_clips, tmp_path):
    opts = AblateOptions(every=2, overlay=False)
    for model in (VisualOnly(), NoAudio()):
        out = tmp_path / model.name
        run = run_ablation(small_clips[:2], str(out), opts, model=model, progress=False, log=lambda m: None)
        assert len(run.done) == 2 and not run.failed
        for r in run.results:
            for c in ("silence", "other"):
                ch = r.change[c]
                assert ch["mad"] == [0.0] * len(r.frame_indices)
                assert ch["peak_shift_px"] == [0.0] * len(r.frame_indices)
                assert np.allclose(ch["cc"], 1.0, atol=1e-12, rtol=0) and np.max(np.abs(ch["kld"])) < 1e-9
        rows = _read_csv(out / "ablation.csv")
        assert all(float(r["mad_vs_original"]) == 0.0 and float(r["peak_moved_share"]) == 0.0 for r in rows)
    assert model.runs == 2  # audio = None: one run per video, the three conditions are the same input
    assert "exactly zero" in (tmp_path / "test-no-audio" / "summary.md").read_text()


def test_cli_classic_av_without_sync_cue_is_unchanged(small_clips, tmp_path):
    from avsal.cli import main

    out = tmp_path / "cli"
    rc = main(["ablate-audio", small_clips[0], "--out", str(out), "--set", "w_sync=0", "--fps", "4",
               "--quiet", "--no-overlay"])
    assert rc == 0
    rows = _read_csv(out / "ablation.csv")
    assert len(rows) == 3
    assert all(float(r["mad_vs_original"]) == 0.0 for r in rows)
    assert main(["ablate-audio", small_clips[0], "--out", str(out), "--data-root", str(tmp_path)]) == 2


def test_derangement_resume_and_determinism(small_clips, tmp_path):
    opts = AblateOptions(every=3, seed=5, overlay=False)
    model = LoudnessBlob()
    a = tmp_path / "a"
    run = run_ablation(small_clips, str(a), opts, model=model, progress=False, log=lambda m: None)
    assert len(run.done) == 3
    names = [Path(p).stem for p in small_clips]
    for r in run.results:
        assert r.donor in names and r.donor != r.name
        assert r.sources["other"].startswith(r.donor)
        assert max(r.change["silence"]["mad"]) > 0  # this model does use the sound
    assert sorted(r.donor for r in run.results) == sorted(names)
    first = {p: (a / "ablation.csv").read_bytes() for p in ("ablation.csv",)}
    stamps = {n: (a / "videos" / n / "result.json").stat().st_mtime_ns for n in names}
    encoded = model.encoded
    # rerun: everything kept, the model not run again
    again = run_ablation(small_clips, str(a), opts, model=model, progress=False, log=lambda m: None)
    assert again.skipped == small_clips and not again.done and model.encoded == encoded
    assert stamps == {n: (a / "videos" / n / "result.json").stat().st_mtime_ns for n in names}
    # one video's folder removed: only that one is redone
    import shutil

    shutil.rmtree(a / "videos" / names[1])
    part = run_ablation(small_clips, str(a), opts, model=model, progress=False, log=lambda m: None)
    assert part.done == [small_clips[1]] and part.skipped == [small_clips[0], small_clips[2]]
    assert (a / "ablation.csv").read_bytes() == first["ablation.csv"]
    # other settings in the same folder: refused
    with pytest.raises(ablate.OutputError, match="other settings"):
        run_ablation(small_clips, str(a), AblateOptions(every=3, seed=5, peak_frac=0.1), model=model,
                     progress=False, log=lambda m: None)
    # a fresh run with the same seed gives the same files, byte for byte
    b = tmp_path / "b"
    run_ablation(small_clips, str(b), opts, model=LoudnessBlob(), progress=False, log=lambda m: None)
    for f in ("ablation.csv", "per_frame.csv", "summary.md", "summary.json"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert sorted(os.listdir(a)) == sorted(os.listdir(b))


def test_video_without_audio_fails_clearly_and_lends_nothing(small_clips, tmp_path):
    from avsal.cli import main
    from avsal.synth import write_clip

    mute = tmp_path / "mute.mp4"
    write_clip(mute, lambda i: np.full((72, 128, 3), 40 + 5 * i, np.uint8), 12, 10.0, audio=None)
    out = tmp_path / "out"
    run = run_ablation([str(mute), *small_clips[:2]], str(out), AblateOptions(every=4, overlay=False),
                       model=LoudnessBlob(), progress=False, log=lambda m: None)
    assert list(run.failed) == [str(mute)] and "has no audio stream" in run.failed[str(mute)]
    names = {Path(p).stem for p in small_clips[:2]}
    assert {r.name: r.donor for r in run.results} == {a: (names - {a}).pop() for a in names}
    assert not (out / "videos" / "mute").exists()
    assert "failed: " in (out / "summary.md").read_text()
    # a model without audio input runs on it normally
    run2 = run_ablation([str(mute)], str(tmp_path / "out2"), AblateOptions(every=4, overlay=False),
                        model=NoAudio(), progress=False, log=lambda m: None)
    assert run2.done == [str(mute)]
    # the command line: exit code 1 when a video failed, the others reported
    assert main(["ablate-audio", str(mute), small_clips[0], "--model", "classic-av", "--every", "6",
                 "--out", str(tmp_path / "cli"), "--quiet", "--no-overlay"]) == 1


def test_real_clip_classic_av(shared_dir, tmp_path):
    """A 1 s Big Buck Bunny excerpt (1280 x 720, real sound): the map moves under ablated audio."""
    clip = shared_dir / "videos" / "open_license" / "big_buck_bunny_432_433.webm"
    if not clip.exists():
        pytest.skip(f"{clip} not present")
    run = run_ablation([str(clip)], str(tmp_path / "out"), AblateOptions(fps=4, overlay=False),
                       progress=False, log=lambda m: None)
    assert not run.failed
    r = run.results[0]
    assert r.peak_threshold_px == pytest.approx(0.05 * np.hypot(1280, 720))  # 73.4 px
    assert r.analysis_size == [180, 320] and len(r.frame_indices) == 4
    assert r.sources["other"].startswith("own, circularly shifted by 0.5")
    assert 0 < r.mean("silence", "mad") < 0.2 and 0.5 < r.mean("silence", "cc") < 1.0
    assert r.mean("other", "mad") > 0


def test_classic_av_runs_are_identical_for_a_seed(small_clips, tmp_path):
    opts = AblateOptions(every=4, seed=7, overlay=False)
    for d in ("a", "b"):
        run = run_ablation(small_clips[:2], str(tmp_path / d), opts, progress=False, log=lambda m: None)
        assert len(run.done) == 2
        assert all(r.mean("other", "mad") > 0 for r in run.results)
    for f in ("ablation.csv", "per_frame.csv", "summary.md", "summary.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def _gaze_csv(path: Path, seconds: float, points: list[tuple[float, float]]) -> Path:
    """Viewers fixating fixed points (video px), 100 Hz, labelled."""
    lines = ["viewer,t_s,x_px,y_px,event"]
    for v, (x, y) in enumerate(points):
        for i in range(int(seconds * 100)):
            lines.append(f"v{v},{i / 100:.2f},{x + 0.3 * np.sin(i):.2f},{y:.2f},fixation")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_gaze_ground_truth_matches_evaluate_gaze(small_clips, tmp_path):
    """Raw gaze (avsal.evaluate.gaze): a folder of <stem>.csv recordings; the original-audio scores equal
    score_against_gaze's `model` row on the same maps (as `avsal evaluate --gaze` on predict's PNGs)."""
    from avsal.evaluate import gaze as G
    from avsal.evaluate.protocol import ProtocolConfig
    from avsal.io.video import Sampling, probe
    from avsal.io.write import to_uint8
    from avsal.models.base import model_stream, upsample

    gdir = tmp_path / "gaze"
    gdir.mkdir()
    for p in small_clips[:2]:
        _gaze_csv(gdir / f"{Path(p).stem}.csv", 1.2, [(20.0, 40.0), (24.0, 38.0), (100.0, 30.0)])
    proto = ProtocolConfig(protocol="stavis", frames="all", metrics=G.GAZE_METRICS)
    opts = AblateOptions(every=2, seed=3, overlay=False, gt=ablate.GazeOptions(str(gdir), protocol=proto))
    run = run_ablation(small_clips, str(tmp_path / "out"), opts, model=LoudnessBlob(), progress=False,
                       log=lambda m: None)
    assert len(run.done) == 3
    by = {r.name: r for r in run.results}
    stem0 = Path(small_clips[0]).stem
    assert by[Path(small_clips[2]).stem].gt is None
    assert any("no ground truth" in w for w in by[Path(small_clips[2]).stem].warnings)
    r0 = by[stem0]
    assert len(r0.gt_frames) == len(r0.frame_indices) == 15
    # parity with score_against_gaze on the original-audio maps
    path = small_clips[0]
    info = probe(path)
    maps = {p.index + 1: to_uint8(upsample(p.saliency, 72, 128)) / 255.0
            for p in model_stream(LoudnessBlob(), iter_frames(path, Sampling(every=2)),
                                  load_audio(path, 16000, mix="mean"), (72, 128))}
    fix = G.fixation_maps(G.load_gaze(gdir / f"{stem0}.csv", size=(72, 128)),
                          G.video_frame_times(info.n_frames, info.fps), (72, 128))
    ref = G.score_against_gaze(maps, fix, G.GazeScoreConfig(metrics=G.GAZE_METRICS, seed=3), name=stem0)
    for m in G.GAZE_METRICS:
        assert r0.gt_mean("original", m) == pytest.approx(ref.means["model"][m], abs=1e-12), m
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "2 of 3 videos have ground truth (gaze recordings `gaze`" in md and "| KLD |" in md
    # one recording, several videos: refused
    with pytest.raises(ValueError, match="one gaze recording"):
        run_ablation(small_clips[:2], str(tmp_path / "x"),
                     AblateOptions(gt=ablate.GazeOptions(str(gdir / f"{stem0}.csv"), protocol=proto)),
                     model=LoudnessBlob(), progress=False, log=lambda m: None)
