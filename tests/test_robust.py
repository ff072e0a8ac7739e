"""Robustness under bad input and long runs (issue 13): each test fails on the code before the fix."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from avsal.io.video import Sampling, iter_frames, read_frames


def _nearest_reference(times: list[float], targets: list[float], end: float) -> dict[int, list[int]]:
    """Brute force: each target in [0, end] goes to the frame whose midpoint interval holds it."""
    t0 = times[0]
    rel = [t - t0 for t in times]
    mids = [-math.inf] + [0.5 * (a + b) for a, b in zip(rel, rel[1:])] + [end]
    owned: dict[int, list[int]] = {}
    for k, t in enumerate(targets):
        for i in range(len(rel)):
            lo, hi = mids[i], mids[i + 1]
            if lo <= t < hi or (i == len(rel) - 1 and lo <= t <= hi):
                owned.setdefault(i, []).append(k)
                break
    return owned


@pytest.mark.parametrize("fps", [0.3, 1.0, 2.0, 7.0, 24.999, 25.0, 60.0, 100.0])
def test_fps_sampling_matches_brute_force(small_clip, fps):
    frames = list(iter_frames(small_clip, Sampling(fps=fps)))
    times = [f.time for f in frames]
    end = times[-1] - times[0] + 1 / 25.0
    targets = [(k + 0.5) / fps for k in range(int(end * fps) + 2)]
    ref = _nearest_reference(times, targets, end)
    got = {f.index: list(f.targets) for f in frames if f.selected}
    assert got == ref
    sel = read_frames(small_clip, Sampling(times=[0.0, 1.0, 1.985, 1.99, 2.5]))
    assert [f.index for f in sel] == [0, 25, 49]


def test_fps_sampling_is_linear_in_frames(small_clip):
    """fps=1e9 on a 2-s clip used to walk 2·10⁹ targets (minutes, gigabytes); now O(frames)."""
    t = time.perf_counter()
    frames = list(iter_frames(small_clip, Sampling(fps=1e9)))
    assert time.perf_counter() - t < 5.0
    assert all(f.selected for f in frames) and len(frames) == 50
    n = sum(len(f.targets) for f in frames)
    assert n == 2_000_000_000  # every target of [0, 2 s] owned exactly once, as ranges


@pytest.mark.parametrize("kwargs", [dict(fps=math.inf), dict(fps=math.nan), dict(times=[math.inf])])
def test_sampling_rejects_non_finite(kwargs):
    with pytest.raises(ValueError):
        Sampling(**kwargs)


# ----------------------------------------------------------------------------------------------------
# One CLI error policy (#1, #8, #11)
# ----------------------------------------------------------------------------------------------------

from avsal.cli import main  # noqa: E402


def _one_error_line(err: str, command: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith("avsal") and "error: " in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("value", ["inf", "nan", "1e9", "0", "-2", "two"])
def test_bad_fps_is_a_usage_error(small_clip, tmp_path, capsys, value):
    with pytest.raises(SystemExit) as ex:
        main(["predict", str(small_clip), "--out", str(tmp_path / "o"), "--fps", value, "--quiet"])
    assert ex.value.code == 2
    assert "--fps" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # refused before anything ran


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "x"])
def test_bad_every_is_a_usage_error(small_clip, tmp_path, capsys, value):
    with pytest.raises(SystemExit) as ex:
        main(["predict", str(small_clip), "--out", str(tmp_path / "o"), "--every", value, "--quiet"])
    assert ex.value.code == 2
    assert "--every" in capsys.readouterr().err


def test_api_refuses_absurd_fps_before_any_video(small_clip, tmp_path):
    from avsal.errors import UsageError
    from avsal.predict import PredictOptions, predict_many

    for fps in (math.inf, 1e9, 0.0):
        with pytest.raises(UsageError, match="--fps"):
            predict_many([str(small_clip)], str(tmp_path / "o"), PredictOptions(fps=fps), progress=False)


def test_random_bytes_as_weights_are_not_a_checkpoint(tmp_path, capsys):
    from avsal.errors import InputError
    from avsal.models.checkpoints import read_checkpoint

    p = tmp_path / "w.pth"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match="not a checkpoint") as ex:
        read_checkpoint(p)
    assert "weights_only=False" not in str(ex.value) and "pickled" not in str(ex.value)
    rc = main(["convert-weights", "--model", "stanet-sta", str(p), str(tmp_path / "o.safetensors")])
    assert rc == 2
    line = _one_error_line(capsys.readouterr().err, "convert-weights")
    assert "not a checkpoint" in line and "weights_only=False" not in line


def _blocked(tmp_path):
    f = tmp_path / "a_file"
    f.write_text("x")
    return str(f / "sub")  # a path under a regular file: cannot be created


def test_error_policy_command_by_command(small_clip, tmp_path, capsys):
    """Every command: an AvsalError that stops it is one line ``avsal CMD: error: …`` and exit 2."""
    blocked = _blocked(tmp_path)
    missing = str(tmp_path / "missing")
    labels = tmp_path / "labels.csv"
    labels.write_text("video,label\nsmall,dog\n")
    cfg = tmp_path / "p.json"
    cfg.write_text('{"work": "%s", "videos": "%s", "labels": "%s"}' % (blocked, small_clip.parent, labels))
    cases = {
        "predict": ["predict", str(small_clip), "--out", blocked, "--quiet"],
        "convert-weights": ["convert-weights", "--model", "stanet-sta", missing, str(tmp_path / "o.safetensors")],
        "prepare folder": ["prepare", "folder", "--videos", str(small_clip.parent), "--labels", str(labels),
                           "--out", blocked, "--quiet"],
        "train scam": ["train", "scam", "--branch", "S", "--stage", "coarse", "--data", missing, "--out",
                       str(tmp_path / "run"), "--tiny", "--quiet"],
        "cams": ["cams", "--run", missing, "--data", missing, "--out", str(tmp_path / "cams"), "--quiet"],
        "pseudo-gt crop": ["pseudo-gt", "crop", "--data", missing, "--cams", f"S={missing}", "--out",
                           str(tmp_path / "crops")],
        "evaluate": ["evaluate", "--data-root", missing, "--dataset", "DIEM", "--pred", missing, "--out",
                     blocked, "--quiet"],
        "pipeline weak": ["pipeline", "weak", "--config", str(cfg)],
    }
    for name, argv in cases.items():
        rc = main(argv)
        assert rc == 2, (name, rc)
        _one_error_line(capsys.readouterr().err, name.split()[0])


# ----------------------------------------------------------------------------------------------------
# A failing write (#2)
# ----------------------------------------------------------------------------------------------------

import errno  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from avsal.synth import write_clip  # noqa: E402


def _noise_clip(path, n=25, h=360, w=640):
    rng = np.random.default_rng(1)
    write_clip(path, lambda i: rng.integers(0, 256, (h, w, 3), dtype=np.uint8), n, 25)
    return path


def _finished_looking(out):
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


@pytest.mark.parametrize("limit_kib", [1100, 1600])  # big: saliency.h5 fails / h5 fits, overlay.mp4 fails
def test_file_size_limit_fails_one_video_and_the_batch_goes_on(small_clip, tmp_path, limit_kib):
    """Under ``ulimit -f`` HDF5 used to segfault (exit 139): no summary, the next video never ran."""
    big = _noise_clip(tmp_path / "big.mp4")
    out = tmp_path / "out"
    code = ("import resource, sys; from avsal.cli import main; "
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit_kib * 1024}, {limit_kib * 1024})); "
            f"sys.exit(main(['predict', {str(big)!r}, {str(small_clip)!r}, '--out', {str(out)!r}, '--quiet']))")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1, r.stderr[-2000:]
    assert "1 done, 0 skipped, 1 failed" in r.stderr
    fail = [ln for ln in r.stderr.splitlines() if ln.startswith("FAIL")]
    assert len(fail) == 1 and "big.mp4" in fail[0] and "could not write" in fail[0]
    assert _finished_looking(out) == ["small"]  # no big/ folder, no hidden partial left
    assert (out / "small" / "meta.json").is_file()


def test_write_error_enospc_is_named_and_cleaned(small_clip, tmp_path, monkeypatch):
    import avsal.predict as P

    calls = {"n": 0}
    real = P.write_png

    def full_disk(path, sal):
        calls["n"] += 1
        if "big" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, sal)

    monkeypatch.setattr(P, "write_png", full_disk)
    big = tmp_path / "big.mp4"
    big.write_bytes(small_clip.read_bytes())
    out = tmp_path / "out"
    res = P.predict_many([str(big), str(small_clip)], str(out), P.PredictOptions(overlay=False), progress=False,
                         log=lambda m: None)
    assert res.done == [str(small_clip)] and list(res.failed) == [str(big)]
    assert "No space left on device" in res.failed[str(big)]
    assert _finished_looking(out) == ["small"]


# ----------------------------------------------------------------------------------------------------
# Ctrl-C and leftovers (#9), reruns (#10), clashing names (#3)
# ----------------------------------------------------------------------------------------------------


def test_ctrl_c_exits_130_with_one_line_and_no_temporary_files(small_clip, tmp_path, capsys, monkeypatch):
    import avsal.predict as P

    calls = {"n": 0}
    real = P.write_png

    def interrupted(path, sal):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        real(path, sal)

    monkeypatch.setattr(P, "write_png", interrupted)
    out = tmp_path / "out"
    assert main(["predict", str(small_clip), "--out", str(out), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and len([ln for ln in err.splitlines() if ln.strip()]) == 1
    assert "interrupted" in err
    assert list(out.iterdir()) == []


def test_sigint_to_a_real_run(small_clip, tmp_path):
    import signal

    out = tmp_path / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-m", "avsal.cli", "predict", str(small_clip), "--out", str(out),
                             "--quiet"], stderr=subprocess.PIPE, text=True, env=env)
    t = time.time()
    while time.time() - t < 120 and not (out.exists() and any(out.iterdir())):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal came")
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len([ln for ln in err.splitlines() if ln.strip()]) == 1
    assert [p.name for p in out.iterdir()] == []


def test_stale_hidden_folders_are_cleaned_by_the_next_run(small_clip, tmp_path):
    import fcntl

    from avsal.io.write import clean_stale
    from avsal.predict import PredictOptions, predict_many

    out = tmp_path / "out"
    (out / ".small.partial-abc123" / "maps").mkdir(parents=True)
    (out / ".small.old-x1y2z3" / "small").mkdir(parents=True)
    live = out / ".other.partial-live1"
    live.mkdir()
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a run in progress (another shard) holds its folder
    try:
        res = predict_many([str(small_clip)], str(out), PredictOptions(overlay=False), progress=False,
                           log=lambda m: None)
        assert res.done == [str(small_clip)]
        assert sorted(p.name for p in out.iterdir()) == [".other.partial-live1", "small"]
        assert clean_stale(out) == []  # still locked
    finally:
        os.close(fd)
    assert clean_stale(out) == [str(live)]
    # a run killed between its two renames: the previous result is restored, not lost
    (out / ".small.old-k1").mkdir()
    (out / "small").rename(out / ".small.old-k1" / "small")
    assert not (out / "small").exists()
    clean_stale(out, "small")
    assert (out / "small" / "meta.json").is_file() and sorted(p.name for p in out.iterdir()) == ["small"]


def test_rerun_skips_only_the_same_input_and_options(small_clip, tmp_path):
    from avsal.predict import PredictOptions, predict_many

    d1, d2 = tmp_path / "d1", tmp_path / "d2"
    d1.mkdir()
    d2.mkdir()
    a, b = d1 / "clip.mp4", d2 / "clip.mp4"
    a.write_bytes(small_clip.read_bytes())
    b.write_bytes(small_clip.read_bytes())
    out = tmp_path / "out"
    opts = PredictOptions(overlay=False, every=10)
    logs: list[str] = []
    res = predict_many([str(a), str(b)], str(out), opts, progress=False, log=logs.append)
    assert len(res.done) == 2 and len(list(out.iterdir())) == 2  # (#3) one folder per input
    res = predict_many([str(a), str(b)], str(out), opts, progress=False, log=logs.append)
    assert len(res.skipped) == 2
    # the input changed: redo it, and say so
    _noise_clip(a, n=10, h=96, w=128)
    logs.clear()
    res = predict_many([str(a), str(b)], str(out), opts, progress=False, log=logs.append)
    assert res.done == [str(a)] and res.skipped == [str(b)]
    assert any(m.startswith("redo") and "input file changed" in m for m in logs)
    # an option that changes the outputs: redo both; one that does not (batch size): skip
    logs.clear()
    res = predict_many([str(a), str(b)], str(out), PredictOptions(overlay=False, every=5), progress=False,
                       log=logs.append)
    assert len(res.done) == 2 and sum("every: 10 -> 5" in m for m in logs) == 2
    res = predict_many([str(a), str(b)], str(out), PredictOptions(overlay=False, every=5, batch_size=3),
                       progress=False, log=lambda m: None)
    assert len(res.skipped) == 2


# ----------------------------------------------------------------------------------------------------
# A constant-colour video (#7)
# ----------------------------------------------------------------------------------------------------


def test_constant_colour_video_gives_the_centre_prior_and_a_warning(tmp_path):
    import cv2

    from avsal.models.classic import centre_prior
    from avsal.predict import predict_video

    p = tmp_path / "grey.mp4"
    write_clip(p, lambda i: np.full((72, 96, 3), 128, np.uint8), 20, 25)
    res = predict_video(p, out_dir=str(tmp_path / "out"), overlay=False)
    assert res.maps.shape == (20, 72, 96)
    assert all(m.max() > 0.99 for m in res.maps)  # never all zeros
    # the centre prior: brightest in the middle, darkest in the corners
    m = res.maps[0]
    assert m[36, 48] > 0.9 and m[0, 0] < 0.2
    assert any("no information" in w and "centre prior" in w for w in res.meta["warnings"])
    png = cv2.imread(str(tmp_path / "out" / "grey" / "maps" / "000001.png"), cv2.IMREAD_GRAYSCALE)
    assert png.max() == 255 and png[0, 0] < 60
    prior = centre_prior(*res.maps.shape[1:])
    assert np.corrcoef(prior.ravel(), m.ravel())[0, 1] > 0.99


# ----------------------------------------------------------------------------------------------------
# Configs checked when loaded (#4)
# ----------------------------------------------------------------------------------------------------

_BASE_YAML = "work: work\nvideos: videos\nannotations: a.txt\nsplits: splits\n"


@pytest.mark.parametrize("extra, key, words", [
    ("scam: {epoch: 1}\n", "scam.epoch", ["unknown key", "did you mean 'epochs'", "allowed:"]),
    ("jobs: two\n", "jobs", ["whole number", "'two'"]),
    ("jobs: 0\n", "jobs", [">= 1"]),
    ("crop: {empty_box: fulll}\n", "crop.empty_box", ["one of 'skip', 'full'", "'fulll'"]),
    ("branches: [S, XX]\n", "branches[1]", ["one of 'S', 'SA', 'ST'", "'XX'"]),
    ("finalize: {variant: upstreem}\n", "finalize.variant", ["'upstream', 'sta_trial'"]),
    ("sta: {lr: .nan}\n", "sta.lr", ["finite"]),
    ("scam_task: {branch: S}\n", "scam_task.branch", ["unknown key"]),
    ("crop: [1, 2]\n", "crop", ["mapping of CropConfig"]),
    ("tiny: yes please\n", "tiny", ["true or false"]),
    ("scam: {epochs: 1\n", "line", ["not valid YAML"]),
])
def test_pipeline_config_checked_before_any_stage(tmp_path, capsys, extra, key, words):
    cfg = tmp_path / "ave.yaml"
    cfg.write_text(_BASE_YAML + extra)
    assert main(["pipeline", "weak", "--config", str(cfg)]) == 2
    line = _one_error_line(capsys.readouterr().err, "pipeline")
    assert f"{key}" in line and all(w in line for w in words), line
    assert not (tmp_path / "work").exists()  # stopped before the first stage


def test_config_sections_match_the_stage_signatures():
    """CropConfig/FinalizeConfig are the stages' keyword arguments, with the same defaults."""
    import dataclasses
    import inspect

    from avsal.pipeline import CropConfig, FinalizeConfig
    from avsal.pseudo_gt.pipeline import crop_stage, finalize_stage

    for cls, fn, own in ((CropConfig, crop_stage, 3), (FinalizeConfig, finalize_stage, 3)):
        params = {n: p.default for n, p in list(inspect.signature(fn).parameters.items())[own:]
                  if n != "progress"}
        fields = {f.name: f.default for f in dataclasses.fields(cls)}
        assert fields == params


def test_one_validation_path_for_json_yaml_and_python(tmp_path):
    from avsal.errors import ConfigError
    from avsal.pipeline import check_config, load_config, run_weak

    (tmp_path / "c.json").write_text('{"work": "w", "videos": "v", "labels": "l.csv", "crop": {"box": "adaptiv"}}')
    with pytest.raises(ConfigError, match=r"crop\.box: must be one of 'upstream', 'adaptive'"):
        load_config(str(tmp_path / "c.json"))
    with pytest.raises(ConfigError, match=r"crop\.box"):
        run_weak({"work": str(tmp_path / "w"), "videos": "v", "labels": "l.csv", "crop": {"box": "adaptiv"}})
    cfg = check_config({"work": "w", "videos": "v", "labels": "l.csv", "branches": ["S"], "crop": {"grid": 64}})
    assert cfg.branches == ("S",) and cfg.crop.grid == 64 and cfg.crop.empty_box == "skip"
    (tmp_path / "bad.json").write_text('{"work": "w",, }')
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(str(tmp_path / "bad.json"))


# ----------------------------------------------------------------------------------------------------
# --set values checked once, before any video (#5)
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("item, words", [
    ("w_sync=1e400", ["w_sync", "finite"]),
    ("w_sync=NaN", ["w_sync", "finite"]),
    ("w_sync=abc", ["w_sync", "expects a number"]),
    ("w_static=-0.5", ["w_static", ">= 0"]),
    ("work_max_side=0", ["work_max_side", ">= 1"]),
    ("sync_grid=[0, 4]", ["sync_grid", ">= 1"]),
    ("sync_grid=[3]", ["sync_grid", "2 values"]),
    ("w_sinc=0.3", ["w_sinc", "did you mean 'w_sync'", "allowed:"]),
])
def test_bad_set_values_stop_before_any_video(small_clip, tmp_path, capsys, item, words):
    out = tmp_path / "o"
    rc = main(["predict", str(small_clip), str(small_clip), "--out", str(out), "--quiet", "--set", item])
    assert rc == 2
    line = _one_error_line(capsys.readouterr().err, "predict")
    assert "--set" in line and all(w in line for w in words), line
    assert not out.exists() or list(out.iterdir()) == []


def test_good_set_values_still_work(small_clip, tmp_path):
    from avsal.predict import predict_video

    res = predict_video(small_clip, every=25, w_sync=0.5, sync_grid=[3, 4], gbvs={"levels": [2, 3]})
    assert res.maps.shape[0] == 2 and np.isfinite(res.maps).all() and res.maps.max() > 0


# ----------------------------------------------------------------------------------------------------
# Clips too short for `pipeline weak` (#6)
# ----------------------------------------------------------------------------------------------------


def test_short_clips_stop_right_after_prepare(tmp_path, capsys):
    """4-s clips used to pass prepare, six trainings and two CAM stages, and fail at the last stage."""
    from conftest import gradient_frame, tone

    videos = tmp_path / "videos"
    videos.mkdir()
    lines = []
    for i, cat in enumerate(["Accordion", "Banjo"]):
        write_clip(videos / f"gen{i}.mp4", lambda j: gradient_frame(j, 72, 96), 40, 10, tone(4.0, 16000), 16000)
        lines.append(f"{cat}&gen{i}&good&0&4")
    (tmp_path / "Annotations.txt").write_text("Category&VideoID&Quality&StartTime&EndTime\n" + "\n".join(lines) + "\n")
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "trainSet.txt").write_text("\n".join(lines) + "\n")
    (splits / "valSet.txt").write_text("")
    (splits / "testSet.txt").write_text("")
    cfg = tmp_path / "ave.yaml"
    cfg.write_text("work: work\nvideos: videos\nannotations: Annotations.txt\nsplits: splits\ntiny: true\n"
                   "progress: false\n")
    assert main(["pipeline", "weak", "--config", str(cfg)]) == 2
    line = _one_error_line("\n".join(ln for ln in capsys.readouterr().err.splitlines()
                                     if not ln.startswith("[pipeline]")), "pipeline")
    assert "7 consecutive seconds" in line and "longest has 4 s" in line and "finalize.window" in line
    assert not (tmp_path / "work" / "runs").exists()  # no training started

    from avsal.pipeline import check_config, seconds_needed

    base = {"work": "w", "videos": "v", "labels": "l.csv"}
    assert seconds_needed(check_config(base)) == 7  # 3 centres of a 5-s window: a frame and both neighbours
    assert seconds_needed(check_config({**base, "finalize": {"window": 3}})) == 5
    assert seconds_needed(check_config({**base, "finalize": {"variant": "sta_trial"}})) == 3
    assert seconds_needed(check_config({**base, "finalize": {"frames": "upstream"}})) == 10


# ----------------------------------------------------------------------------------------------------
# One decode, writers in threads: outputs unchanged (long videos)
# ----------------------------------------------------------------------------------------------------


def _serial_reference(path, out_dir, sampling, alpha=0.6, max_side=320):
    """The outputs as the two-pass serial writer made them before (maps, saliency.h5, then a second decode
    for the overlay from saliency.h5)."""
    import h5py

    from avsal.io.audio import load_audio
    from avsal.io.video import probe
    from avsal.io.write import H5MapWriter, OverlayWriter, jet_overlay, write_png
    from avsal.models import create_video_model
    from avsal.models.base import model_stream, upsample
    from avsal.predict import _h5_size

    info = probe(path)
    model = create_video_model("classic-av")
    audio = load_audio(path, sample_rate=model.audio.sample_rate, stream_index=info.audio_stream, mix=model.audio.mix)
    H, W = info.height, info.width
    hs = _h5_size(H, W, max_side)
    os.makedirs(os.path.join(out_dir, "maps"))
    h5 = H5MapWriter(os.path.join(out_dir, "saliency.h5"), hs, attrs={"frame_size": (H, W), "model": model.name})
    for pred in model_stream(model, iter_frames(path, sampling, info=info), audio, (H, W)):
        write_png(os.path.join(out_dir, "maps", f"{pred.index + 1:06d}.png"), upsample(pred.saliency, H, W))
        h5.append(upsample(pred.saliency, *hs), pred.index, pred.time)
    h5.close()
    with h5py.File(os.path.join(out_dir, "saliency.h5"), "r") as f:
        idx, sal = f["frame_indices"][:], f["saliency"]
        w = OverlayWriter(os.path.join(out_dir, "overlay.mp4"), W, H, info.fps, info.time_base, audio_source=path,
                          audio_stream=info.audio_stream)
        k = 0
        for fr in iter_frames(path, info=info):
            while k + 1 < len(idx) and idx[k + 1] <= fr.index:
                k += 1
            w.write(jet_overlay(fr.rgb, upsample(sal[k].astype(np.float32), H, W), alpha), fr.pts)
        w.close()


def _decoded(path):
    import av

    with av.open(str(path)) as c:
        return [(f.pts, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]


@pytest.mark.parametrize("every, hold", [(None, None), (7, None), (7, 1)])
def test_single_decode_outputs_equal_the_two_pass_writer(small_clip, tmp_path, monkeypatch, every, hold):
    """``hold=1``: the frames waiting for the model's look-ahead exceed the cap at once, and the overlay is
    made by a second decode instead (bounded memory for models that look far ahead)."""
    import avsal.predict as P
    from avsal.predict import PredictOptions, predict_many

    second = []
    if hold is not None:
        monkeypatch.setattr(P, "MAX_PENDING_BYTES", hold)
        real = P._write_overlay
        monkeypatch.setattr(P, "_write_overlay", lambda *a: (second.append(1), real(*a)))
    ref = tmp_path / "ref"
    _serial_reference(str(small_clip), str(ref), Sampling(every=every))
    res = predict_many([str(small_clip)], str(tmp_path / "out"), PredictOptions(every=every), progress=False,
                       log=lambda m: None)
    new = tmp_path / "out" / "small"
    assert res.done
    names = sorted(p.name for p in (ref / "maps").iterdir())
    assert names == sorted(p.name for p in (new / "maps").iterdir()) and len(names) == (50 if every is None else 8)
    for n in names:
        assert (ref / "maps" / n).read_bytes() == (new / "maps" / n).read_bytes()
    assert (ref / "saliency.h5").read_bytes() == (new / "saliency.h5").read_bytes()
    assert len(second) == (hold is not None)
    a, b = _decoded(ref / "overlay.mp4"), _decoded(new / "overlay.mp4")
    assert len(a) == len(b) == 50
    assert all(pa == pb and np.array_equal(xa, xb) for (pa, xa), (pb, xb) in zip(a, b))


def test_writer_thread_failure_stops_the_video(small_clip, tmp_path, monkeypatch):
    """An error in a writer thread reaches the caller; the video's folder is not kept."""
    import avsal.predict as P

    def broken(*a, **k):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(P, "jet_overlay", broken)
    res = P.predict_many([str(small_clip)], str(tmp_path / "out"), P.PredictOptions(), progress=False,
                         log=lambda m: None)
    assert list(res.failed) == [str(small_clip)] and "Input/output error" in res.failed[str(small_clip)]
    assert list((tmp_path / "out").iterdir()) == []


# ----------------------------------------------------------------------------------------------------
# Safetensors written by avsal: identical weights, identical bytes
# ----------------------------------------------------------------------------------------------------


def test_saved_weights_are_byte_identical(tmp_path):
    import hashlib

    import torch

    from avsal.models.checkpoints import read_checkpoint, read_sidecar, save_weights

    sd = {f"layer{i}.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4) + i for i in range(3)}
    hashes = set()
    for i in range(12):  # the writer's metadata order changed from one call to the next
        p = tmp_path / f"w{i}.safetensors"
        save_weights(sd, p, "stanet-sta", {"b": 1, "a": [1, 2]} if i % 2 else {"a": [1, 2], "b": 1})
        hashes.add(hashlib.sha256(p.read_bytes()).hexdigest())
    assert len(hashes) == 1
    back = read_checkpoint(tmp_path / "w0.safetensors")
    assert set(back) == set(sd) and all(torch.equal(back[k], sd[k]) for k in sd)
    assert read_sidecar(tmp_path / "w0.safetensors")["model"] == "stanet-sta"


# ----------------------------------------------------------------------------------------------------
# One atomic writer
# ----------------------------------------------------------------------------------------------------


def test_atomic_file_replaces_only_on_success(tmp_path):
    import cv2

    from avsal.errors import OutputError
    from avsal.io.write import atomic_file, write_json_atomic

    target = tmp_path / "sub" / "x.png"
    with atomic_file(target) as tmp:
        assert tmp.endswith(".png") and os.path.basename(tmp).startswith(".x.png.partial-")
        assert cv2.imwrite(tmp, np.zeros((4, 4), np.uint8))  # the format follows the extension
    assert cv2.imread(str(target)).shape == (4, 4, 3)
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask_now())
    before = target.read_bytes()
    with pytest.raises(RuntimeError):
        with atomic_file(target) as tmp:
            open(tmp, "wb").write(b"half")
            raise RuntimeError("killed")
    assert target.read_bytes() == before and sorted(p.name for p in target.parent.iterdir()) == ["x.png"]
    with pytest.raises(OutputError, match="No space left"):
        with atomic_file(tmp_path / "y.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert not (tmp_path / "y.json").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["sub"]
    with pytest.raises(OutputError):
        write_json_atomic(tmp_path / "sub" / "x.png" / "z.json", {})  # under a file
    write_json_atomic(tmp_path / "z.json", {"b": 1})
    assert (tmp_path / "z.json").read_text() == '{\n  "b": 1\n}\n'


def _umask_now() -> int:
    m = os.umask(0o022)
    os.umask(m)
    return m


def test_sigint_to_prepare_with_workers(tmp_path):
    """Ctrl-C (SIGINT to the whole process group) during `prepare --jobs 2`: exit 130, one line, no
    KeyboardInterrupt traceback from the parent or the pool's workers."""
    import signal

    from conftest import gradient_frame, tone

    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(6):
        write_clip(videos / f"c{i}.mp4", lambda j: gradient_frame(j, 48, 64), 60, 10, tone(6.0, 16000), 16000)
    (tmp_path / "labels.csv").write_text("video,label\n" + "".join(f"c{i},dog\n" for i in range(6)))
    out = tmp_path / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-m", "avsal.cli", "prepare", "folder", "--videos", str(videos),
                             "--labels", str(tmp_path / "labels.csv"), "--out", str(out), "--jobs", "2", "--quiet"],
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    t = time.time()
    while time.time() - t < 120 and not (out / "frames").is_dir():
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("prepare finished before the signal came")
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert [ln for ln in err.splitlines() if ln.strip()] == [
        "avsal prepare: interrupted (temporary outputs removed; rerun to continue)"]
