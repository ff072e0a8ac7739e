"""``avsal prepare``: AVE annotation/split readers, prepared-root contents, resumability, failures,
parallel determinism, folder mode and the command's exit codes.

The real AVE clips of ../shared/data (``videos/research_only/ave_*.mp4``) are added to the AVE-format
set when that folder is present; the generated clips run everywhere.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from avsal.data import command
from avsal.data.prepare import (MANIFEST_COLUMNS, MARKER, encode_jpeg, prepare_ave, prepare_clip, prepare_folder,
                                read_ave_annotations, read_ave_splits, read_labels_csv, read_manifest)
from avsal.errors import InputError
from avsal.io import Sampling, iter_frames, load_audio
from avsal.io.audio import read_features_h5, stft_windows
from avsal.models.stanet.networks import AVE_CLASSES
from avsal.synth import write_clip

from conftest import SHARED, gradient_frame, tone

FPS = 10  # generated clips: frame i sits at i/10 s, so second s's middle frame is exactly frame 10 s + 5


def indexed_frame(i: int) -> np.ndarray:
    """``gradient_frame`` with a top band whose grey level (4·i) tells the frame index back from a JPEG."""
    img = gradient_frame(i)
    img[:12] = 4 * i
    return img


def frame_index_of(jpg: Path) -> int:
    img = cv2.imread(str(jpg))
    return int(round(float(img[2:10].mean()) / 4))


def gen_clip(path: Path, seconds: float, audio: bool = True, rate: int = 16000, channels: int = 1,
             fps: int = FPS, audio_seconds: float | None = None) -> Path:
    a = tone(audio_seconds or seconds, rate, channels, freq=330.0) if audio else None
    write_clip(path, indexed_frame, int(round(seconds * fps)), fps, a, rate)
    return path


# (category, video id, start, end, split) of the generated AVE-format clips that must succeed
GEN_OK = [("Ukulele", "genA", 1, 5, "train"), ("Bark", "genB", 0, 4, "val"), ("Cat", "genDup", 0, 2, "train"),
          ("Goat", "genDup", 1, 3, "test")]
# ... and of those that must fail, with a piece of the expected reason
GEN_FAIL = [("Bus", "missing", 0, 3, "train", "video file not found"),
            ("Horse", "textfile", 0, 3, "train", "not a readable video file"),
            ("Truck", "short", 0, 5, "train", "shorter than the annotated interval"),
            ("Clock", "noaudio", 0, 2, "train", "no audio stream")]
REAL_IDS = {"0lFf-HP86Q0", "16eUxQwxxbs", "22olCB3wQaA"}


def _ave_line(cat, vid, s, e) -> str:
    return f"{cat}&{vid}&good&{s}&{e}"


@pytest.fixture(scope="module")
def ave_set(tmp_path_factory):
    """videos/, Annotations (header + CRLF), splits/; real AVE clips when ../shared/data is present."""
    root = tmp_path_factory.mktemp("ave_set")
    vids = root / "videos"
    vids.mkdir()
    gen_clip(vids / "genA.mp4", 6)
    gen_clip(vids / "genB.mkv", 4, rate=44100, channels=2)  # other extension, stereo 44.1 kHz
    gen_clip(vids / "genDup.mp4", 3)
    gen_clip(vids / "short.mp4", 2)
    gen_clip(vids / "noaudio.mp4", 3, audio=False)
    (vids / "textfile.mp4").write_text("this is not a video\n")
    lines = [_ave_line(c, v, s, e) for c, v, s, e, _ in GEN_OK] + \
            [_ave_line(c, v, s, e) for c, v, s, e, _, _ in GEN_FAIL]
    split_lines = {"train": [], "val": [], "test": []}
    for c, v, s, e, sp, *_ in GEN_OK + GEN_FAIL:
        split_lines[sp].append(_ave_line(c, v, s, e))
    real = {}
    if SHARED is not None:
        ann = (SHARED / "metadata" / "ave" / "Annotations.txt").read_text().splitlines()
        for src in sorted((SHARED / "videos" / "research_only").glob("ave_*.mp4")):
            vid = next(i for i in REAL_IDS if i in src.name)
            shutil.copy(src, vids / f"{vid}.mp4")
            line = next(ln for ln in ann if f"&{vid}&" in ln)
            lines.append(line)
            split_lines["train"].append(line)
            cat, _, _, s, e = line.split("&")
            real[vid] = (cat, int(s), int(e))
    annotations = root / "Annotations.txt"
    annotations.write_bytes(("Category&VideoID&Quality&StartTime&EndTime\r\n"
                             + "\r\n".join(ln + "  " for ln in lines) + "\r\n").encode())
    splits = root / "splits"
    splits.mkdir()
    for sp, name in (("train", "trainSet.txt"), ("val", "valSet.txt"), ("test", "testSet.txt")):
        (splits / name).write_text("\n".join(split_lines[sp]) + "\n")
    return {"root": root, "videos": vids, "annotations": annotations, "splits": splits, "real": real}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="avsal")
    command.add_parser(p.add_subparsers(dest="command"))
    return p


def _run_cli(argv: list[str]) -> int:
    return command.run(_parser().parse_args(argv))


def _ave_argv(s, out: Path, jobs: int = 1, extra=()) -> list[str]:
    return ["prepare", "ave", "--videos", str(s["videos"]), "--annotations", str(s["annotations"]),
            "--splits", str(s["splits"]), "--out", str(out), "--jobs", str(jobs), "--quiet", *extra]


@pytest.fixture(scope="module")
def prepared(ave_set, tmp_path_factory):
    """The AVE-format set prepared with --jobs 1 and with --jobs 2 (with --keep-wav): (rc1, root1, rc2, root2)."""
    out1 = tmp_path_factory.mktemp("prep1") / "root"
    out2 = tmp_path_factory.mktemp("prep2") / "root"
    rc1 = _run_cli(_ave_argv(ave_set, out1, 1, ["--keep-wav"]))
    rc2 = _run_cli(_ave_argv(ave_set, out2, 2, ["--keep-wav"]))
    return rc1, out1, rc2, out2


def _expected_clips(ave_set) -> dict[str, tuple[str, int, int, str]]:
    exp = {}
    for c, v, s, e, sp in GEN_OK:
        clip = v if v != "genDup" else f"{v}__{AVE_CLASSES.index(c):02d}"
        exp[clip] = (c, s, e, sp)
    for vid, (c, s, e) in ave_set["real"].items():
        exp[vid] = (c, s, e, "train")
    return exp


def _video_of(ave_set, clip: str) -> Path:
    vid = clip.split("__")[0]
    return next(p for p in ave_set["videos"].iterdir() if p.stem == vid)


# ----------------------------------------------------------------------------------------------------
# Readers
# ----------------------------------------------------------------------------------------------------

def test_annotations_with_and_without_header(tmp_path):
    body = ["Ukulele&16eUxQwxxbs&good&0&10", "Race car, auto racing&22olCB3wQaA&good&5&10 "]
    a = tmp_path / "a.txt"
    a.write_text("\n".join(body) + "\n")
    b = tmp_path / "b.txt"
    b.write_bytes(("\ufeffCategory&VideoID&Quality&StartTime&EndTime\r\n\r\n" + "\r\n".join(body) + "\t\r\n").encode())
    ra, rb = read_ave_annotations(a), read_ave_annotations(b)
    assert ra == rb and len(ra) == 2
    assert ra[1].category == "Race car, auto racing" and ra[1].video_id == "22olCB3wQaA"
    assert (ra[1].start, ra[1].end, ra[1].seconds) == (5, 10, range(5, 10))
    assert ra[0].class_id == 26 and ra[1].class_id == 20 and ra[0].quality == "good"


@pytest.mark.parametrize("line, words", [
    ("Ukulele&abc&good&0", "expected 5"),
    ("Ukulele&abc&good&0&x", "whole seconds"),
    ("Ukulele&abc&good&0&2.5", "whole seconds"),
    ("Ukulele&abc&good&6&2", "bad interval"),
    ("Kazoo&abc&good&0&10", "unknown AVE category"),
    ("Ukulele&&good&0&10", "empty"),
])
def test_malformed_annotation_names_file_and_line(tmp_path, line, words):
    p = tmp_path / "ann.txt"
    p.write_text("Category&VideoID&Quality&StartTime&EndTime\nUkulele&ok1&good&0&10\n\n" + line + "\n")
    with pytest.raises(InputError) as ei:
        read_ave_annotations(p)
    msg = str(ei.value)
    assert str(p) in msg and "line 4" in msg and words in msg
    with pytest.raises(InputError, match="not found"):
        read_ave_annotations(tmp_path / "nope.txt")


def test_splits_reader(tmp_path):
    (tmp_path / "trainSet.txt").write_text("Cat&v1&good&0&10\nGoat&v1&good&0&10\n")
    (tmp_path / "testSet.txt").write_text("Bus&v2&good&2&4\n")
    s = read_ave_splits(tmp_path)
    assert s == {("Cat", "v1"): "train", ("Goat", "v1"): "train", ("Bus", "v2"): "test"}
    (tmp_path / "valSet.txt").write_text("Bus&v2&good&2&4\n")
    with pytest.raises(InputError, match=r"testSet.txt: line 1: v2 \(Bus\) is also in the val split"):
        read_ave_splits(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="none of the split files"):
        read_ave_splits(tmp_path / "empty")


def test_real_ave_annotation_files(shared_dir):
    meta = shared_dir / "metadata" / "ave"
    anns = read_ave_annotations(meta / "Annotations.txt")
    assert len(anns) == 4143 and {a.category for a in anns} == set(AVE_CLASSES)
    splits = read_ave_splits(meta)
    assert len(splits) == 4143
    assert sorted(splits.values()).count("train") == 3339 and list(splits.values()).count("test") == 402


def test_labels_csv(tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text("video,label,split\nx.mp4,Dog barking,val\ny,26,train\n")
    e = read_labels_csv(p)
    assert [(x.video, x.class_name, x.split) for x in e] == [("x.mp4", "Dog barking", "val"), ("y", "Ukulele", "train")]
    p.write_text("video,label\nx.mp4,99\n")
    with pytest.raises(InputError, match="line 2"):
        read_labels_csv(p)
    p.write_text("file,class\nx.mp4,Dog\n")
    with pytest.raises(InputError, match="header"):
        read_labels_csv(p)


# ----------------------------------------------------------------------------------------------------
# The prepared AVE-format root
# ----------------------------------------------------------------------------------------------------

def test_manifest_rows_failures_and_exit_code(prepared, ave_set):
    rc, root, _, _ = prepared
    assert rc == 1  # some clips failed, the others are prepared
    exp = _expected_clips(ave_set)
    with open(root / "manifest.csv", newline="") as f:
        reader = csv.reader(f)
        assert tuple(next(reader)) == MANIFEST_COLUMNS
        raw = list(reader)
    rows = read_manifest(root)
    assert [(r.clip, r.second) for r in rows] == sorted((r.clip, r.second) for r in rows)
    assert len(raw) == len(rows) == sum(e - s for _, s, e, _ in exp.values())
    for clip, (cat, s, e, sp) in exp.items():
        mine = [r for r in rows if r.clip == clip]
        assert [r.second for r in mine] == list(range(s, e)), clip
        for r in mine:
            assert (r.class_id, r.class_name, r.split) == (AVE_CLASSES.index(cat), cat, sp)
            assert r.frame == f"frames/{clip}/{r.second:02d}.jpg" and r.audio == f"audio/{clip}/{r.second:02d}.h5"
            assert (root / r.frame).is_file() and (root / r.audio).is_file()
        assert (root / "frames" / clip / MARKER).is_file()
        assert (root / "wav" / f"{clip}.wav").is_file()
    with open(root / "failures.csv", newline="") as f:
        fails = {r["clip"]: r["reason"] for r in csv.DictReader(f)}
    assert set(fails) == {v for _, v, *_ in GEN_FAIL}
    for _, vid, _, _, _, words in GEN_FAIL:
        assert words in fails[vid], (vid, fails[vid])
        assert not (root / "frames" / vid).exists() and not (root / "audio" / vid).exists()
    assert json.loads((root / "classes.json").read_text()) == list(AVE_CLASSES)
    cfg = json.loads((root / "prepare_config.json").read_text())
    assert cfg["mode"] == "ave" and cfg["arguments"]["jobs"] == 1 and cfg["arguments"]["keep_wav"] is True
    assert cfg["arguments"]["annotations"] == str(ave_set["annotations"].resolve())
    assert cfg["counts"]["failed"] == len(GEN_FAIL) and cfg["counts"]["rows"] == len(rows)


def test_frames_are_the_middle_frame_of_each_second(prepared, ave_set):
    _, root, _, _ = prepared
    for clip, (_, s, e, _) in _expected_clips(ave_set).items():
        video = _video_of(ave_set, clip)
        ref = [f for f in iter_frames(video, Sampling(times=[t + 0.5 for t in range(s, e)])) if f.selected]
        assert len(ref) == e - s
        for sec, f in zip(range(s, e), ref):
            jpg = root / "frames" / clip / f"{sec:02d}.jpg"
            assert jpg.read_bytes() == encode_jpeg(f.rgb), (clip, sec)  # same pixels, same encoder (q95)
            assert cv2.imread(str(jpg)).shape[:2] == f.rgb.shape[:2]  # original resolution
            if clip.startswith("gen"):
                assert frame_index_of(jpg) == FPS * sec + FPS // 2 == f.index


def test_audio_features_are_the_window_starting_at_each_second(prepared, ave_set):
    _, root, _, _ = prepared
    for clip, (_, s, e, _) in _expected_clips(ave_set).items():
        # upstream audiostft.py: channel mean at the native rate, then resampy kaiser_best to 16 kHz
        native = load_audio(_video_of(ave_set, clip), None, mix="mean")
        track = load_audio(_video_of(ave_set, clip), None, mix="mean")
        if native.sample_rate != 16000:
            import resampy

            track.samples = resampy.resample(native.samples.astype(np.float64), native.sample_rate, 16000,
                                             filter="kaiser_best").astype(np.float32)
        for sec in range(s, e):
            got = read_features_h5(root / "audio" / clip / f"{sec:02d}.h5")
            want = stft_windows(track.samples[sec * 16000:(sec + 1) * 16000][None])[0]
            assert got.shape == (81, 199) and got.dtype == np.float32
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=f"{clip} {sec}")
        from scipy.io import wavfile

        rate, wav = wavfile.read(root / "wav" / f"{clip}.wav")
        assert rate == 16000 and wav.dtype == np.float32 and np.array_equal(wav, track.samples)


def test_jobs_2_gives_identical_outputs(prepared):
    rc1, root1, rc2, root2 = prepared
    assert rc1 == rc2 == 1

    def files(root):
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.is_file() and p.name != "prepare_config.json"}

    f1, f2 = files(root1), files(root2)
    assert sorted(f1) == sorted(f2)
    assert [k for k in f1 if f1[k] != f2[k]] == []


# ----------------------------------------------------------------------------------------------------
# Resumability, errors of one clip, folder mode
# ----------------------------------------------------------------------------------------------------

def test_resume_skips_complete_clips_and_redoes_only_a_clip_without_marker(tmp_path):
    vids = tmp_path / "videos"
    vids.mkdir()
    for name in ("c1", "c2", "c3"):
        gen_clip(vids / f"{name}.mp4", 3)
    ann = tmp_path / "ann.txt"  # no header line
    ann.write_text("Cat&c1&good&0&3\nBus&c2&good&1&3\nBark&c3&good&0&2\n")
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "trainSet.txt").write_text(ann.read_text())
    out = tmp_path / "root"
    r1 = prepare_ave(vids, ann, splits, out, progress=False)
    assert r1.ok and r1.prepared == ["c1", "c2", "c3"] and r1.skipped == [] and len(r1.rows) == 7
    manifest = (out / "manifest.csv").read_bytes()
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.suffix in (".jpg", ".h5") or p.name == MARKER}
    assert len(stamp) == 7 * 2 + 3
    r2 = prepare_ave(vids, ann, splits, out, progress=False)
    assert r2.prepared == [] and r2.skipped == ["c1", "c2", "c3"] and r2.rows == r1.rows
    assert (out / "manifest.csv").read_bytes() == manifest
    assert all(p.stat().st_mtime_ns == t for p, t in stamp.items())
    (out / "frames" / "c2" / MARKER).unlink()
    r3 = prepare_ave(vids, ann, splits, out, progress=False)
    assert r3.prepared == ["c2"] and r3.skipped == ["c1", "c3"] and r3.rows == r1.rows
    assert (out / "manifest.csv").read_bytes() == manifest
    for p, t in stamp.items():
        assert (p.stat().st_mtime_ns == t) == ("/c2/" not in p.as_posix()), p
    # a changed interval redoes that clip, and stale seconds disappear
    ann.write_text("Cat&c1&good&0&3\nBus&c2&good&1&3\nBark&c3&good&1&2\n")
    (splits / "trainSet.txt").write_text(ann.read_text())
    r4 = prepare_ave(vids, ann, splits, out, progress=False)
    assert r4.prepared == ["c3"] and not (out / "frames" / "c3" / "00.jpg").exists()
    assert [r.second for r in r4.rows if r.clip == "c3"] == [1]


def test_prepare_clip_errors(tmp_path):
    out = tmp_path / "root"
    silent = gen_clip(tmp_path / "silent.mp4", 2, audio=False)
    with pytest.raises(InputError, match="no audio stream"):
        prepare_clip(silent, "silent", range(0, 2), 3, out)
    vshort = gen_clip(tmp_path / "vshort.mp4", 2, audio_seconds=5)  # 2 s of video, 5 s of audio
    with pytest.raises(InputError, match=r"video is 2\.\d+ s long, shorter than the annotated interval \[0, 4\)"):
        prepare_clip(vshort, "vshort", range(0, 4), 3, out)
    assert not (out / "frames" / "vshort").exists() and not (out / "audio" / "vshort").exists()
    with pytest.raises(InputError, match="file not found"):
        prepare_clip(tmp_path / "nothing.mp4", "x", range(0, 1), 0, out)
    with pytest.raises(ValueError, match="clip id"):
        prepare_clip(vshort, "../evil", range(0, 1), 0, out)
    rows = prepare_clip(vshort, "ok", range(0, 2), 3, out, class_name="Banjo", split="val")
    assert [(r.second, r.class_id, r.class_name, r.split) for r in rows] == [(0, 3, "Banjo", "val"),
                                                                            (1, 3, "Banjo", "val")]


def test_folder_mode(tmp_path):
    vids = tmp_path / "videos"
    vids.mkdir()
    gen_clip(vids / "alpha.mp4", 3)
    gen_clip(vids / "beta.mkv", 2.5, rate=44100, channels=2)  # 2 whole seconds
    gen_clip(vids / "gamma.mp4", 2)
    labels = tmp_path / "labels.csv"
    labels.write_text("video,label,split\nalpha.mp4,Zither,train\nbeta,26,val\ngamma.mp4,Accordion,test\n"
                      "delta.mp4,Zither,train\n")
    out = tmp_path / "root"
    rc = _run_cli(["prepare", "folder", "--videos", str(vids), "--labels", str(labels), "--out", str(out), "--quiet"])
    assert rc == 1  # delta.mp4 is missing
    classes = json.loads((out / "classes.json").read_text())
    assert classes == ["Accordion", "Ukulele", "Zither"]
    rows = read_manifest(out)
    got = {(r.clip, r.second, r.class_id, r.class_name, r.split) for r in rows}
    assert got == {("alpha", s, 2, "Zither", "train") for s in range(3)} | \
                  {("beta", s, 1, "Ukulele", "val") for s in range(2)} | \
                  {("gamma", s, 0, "Accordion", "test") for s in range(2)}
    assert frame_index_of(out / "frames" / "alpha" / "02.jpg") == 25
    assert [r["clip"] for r in csv.DictReader(open(out / "failures.csv"))] == ["delta"]
    os.remove(vids / "gamma.mp4")  # resumed: complete clips skipped, the missing one still fails
    labels.write_text("video,label\nalpha.mp4,Zither\nbeta,26\n")
    r = prepare_folder(vids, labels, out, jobs=2, progress=False)
    assert r.ok and r.prepared == [] and r.skipped == ["alpha", "beta"]
    assert {(x.clip, x.class_id) for x in read_manifest(out)} == {("alpha", 1), ("beta", 0)}
    assert json.loads((out / "classes.json").read_text()) == ["Ukulele", "Zither"]


def test_command_exit_codes(tmp_path, ave_set):
    p = _parser()
    with pytest.raises(SystemExit) as ei:
        p.parse_args(["prepare", "ave", "--videos", "x"])
    assert ei.value.code == 2
    out = tmp_path / "root"
    bad = tmp_path / "bad.txt"
    bad.write_text("Ukulele&abc&good&0\n")
    assert _run_cli(["prepare", "ave", "--videos", str(ave_set["videos"]), "--annotations", str(bad),
                     "--splits", str(ave_set["splits"]), "--out", str(out), "--quiet"]) == 2
    assert _run_cli(["prepare", "ave", "--videos", str(tmp_path / "none"), "--annotations",
                     str(ave_set["annotations"]), "--splits", str(ave_set["splits"]), "--out", str(out)]) == 2
    assert _run_cli(["prepare", "folder", "--videos", str(ave_set["videos"]), "--labels", str(tmp_path / "no.csv"),
                     "--out", str(out)]) == 2
    assert _run_cli(_ave_argv(ave_set, out, jobs=-1)) == 2
    good = tmp_path / "good.txt"
    good.write_text("Ukulele&genA&good&1&5\n")
    assert _run_cli(["prepare", "ave", "--videos", str(ave_set["videos"]), "--annotations", str(good),
                     "--splits", str(ave_set["splits"]), "--out", str(out), "--quiet"]) == 0
