"""classic-av v2: the face cue, the combination, the v1 configuration, and the peak on faces of a real interview."""

from __future__ import annotations

import json

import numpy as np
import pytest

import avsal.models.classic as classic
from avsal.io import Sampling, iter_frames, load_audio
from avsal.io.video import Frame
from avsal.models.classic import ClassicAV, ClassicAVConfig, centre_prior, combine_cues, face_map
from avsal.synth import make_talking_faces_clip

from conftest import REPO

LABELS = REPO / "tests" / "data" / "faces" / "face_boxes.json"


def test_face_map_shape_peak_and_weights():
    boxes = np.array([[10, 20, 50, 80], [100, 10, 120, 40]], np.float32)
    m = face_map((90, 160), boxes, np.array([1.0, 0.5]), sigma=(0.5, 0.4), centre_y=0.45)
    assert m.shape == (90, 160) and m.dtype == np.float32
    y, x = np.unravel_index(np.argmax(m), m.shape)
    assert abs(x + 0.5 - 30) <= 1 and abs(y + 0.5 - (20 + 0.45 * 60)) <= 1
    assert m.max() == pytest.approx(1.0, abs=0.01)
    assert m[int(10 + 0.45 * 30), 110] == pytest.approx(0.5, abs=0.02)  # the second face's peak = its weight
    # anisotropic: sigma follows the box (tall box -> falls off slower vertically than horizontally)
    assert m[int(47 + 15), 30] > m[47, 30 + 15]
    assert face_map((9, 16), np.zeros((0, 4)), np.zeros(0)).max() == 0.0


def _old_combine(cues, w=(0.4, 0.3, 0.3), w_centre=0.5, blur_frac=0.02):
    """The v1 formula, written out independently (module docstring before issue 11)."""
    import cv2

    parts = [(w[0], cues["static"])] + [(wi, cues[k]) for wi, k in zip(w[1:], ("motion", "sync")) if cues[k] is not None]
    s = sum(a * p for a, p in parts) / sum(a for a, _ in parts)
    s = s * ((1 - w_centre) + w_centre * centre_prior(*s.shape))
    s = cv2.GaussianBlur(s.astype(np.float32), (0, 0), blur_frac * s.shape[1], borderType=cv2.BORDER_REPLICATE)
    return s / s.max()


def test_v1_config_reproduces_the_old_combination():
    rng = np.random.default_rng(0)
    cues = {k: rng.uniform(0, 1, (36, 64)).astype(np.float32) for k in ("static", "motion", "sync")}
    cues["face"] = None
    np.testing.assert_allclose(combine_cues(cues, ClassicAVConfig.v1()), _old_combine(cues), atol=1e-5)
    cues["sync"] = None
    np.testing.assert_allclose(combine_cues(cues, ClassicAVConfig.v1()), _old_combine(cues), atol=1e-5)
    # the v2 default differs (gamma, centre blend)
    assert np.abs(combine_cues(cues, ClassicAVConfig()) - _old_combine(cues)).max() > 0.05


def test_centre_blend_and_gamma():
    cfg = ClassicAVConfig(w_centre=0.0, blur_frac=0.0, gamma_static=1.0, w_centre_blend=0.3)
    s = np.zeros((30, 40), np.float32)
    s[2, 3] = 1.0
    out = combine_cues({"static": s}, cfg)
    c = centre_prior(30, 40)
    expect = 0.7 * s + 0.3 * c
    np.testing.assert_allclose(out, expect / expect.max(), atol=1e-6)
    ramp = np.tile(np.linspace(0, 1, 40, dtype=np.float32), (30, 1))
    sharp = combine_cues({"static": ramp}, ClassicAVConfig(w_centre=0.0, blur_frac=0.0, w_centre_blend=0.0,
                                                            gamma_static=2.0))
    np.testing.assert_allclose(sharp, ramp ** 2, atol=1e-6)


class _FixedDetector:
    """Returns the two synthetic faces (dlib's HOG does not see cartoon faces)."""

    boxes = None

    def __init__(self, *a, **k):
        pass

    def detect(self, rgb):
        return self.boxes.copy()


def test_speaking_face_weighs_more(tmp_path, monkeypatch):
    scene = make_talking_faces_clip(tmp_path / "talk.mp4", seconds=4.0, seed=0)
    every4 = Sampling(every=4)  # every frame feeds the tracks and speaker scores; maps for 1 in 4 (faster)
    _FixedDetector.boxes = np.array([list(scene.speaker_box) + [1.0], list(scene.silent_box) + [1.0]], np.float32)
    monkeypatch.setattr(classic, "FaceDetector", _FixedDetector)
    audio = load_audio(tmp_path / "talk.mp4")
    model = ClassicAV(face_speak_gain=1.0)
    sp, si, fm = [], [], []
    for pred, cues, faces in model.stream_cues(iter_frames(tmp_path / "talk.mp4", every4), audio):
        ids = {t: s for t, _, s in faces}
        sp.append(ids[0])
        si.append(ids[1])
        f = cues["face"]
        sx = f.shape[1] / scene.width
        fm.append((f[:, int(sx * (scene.speaker_box[0] + scene.speaker_box[2]) / 2)].max(),
                   f[:, int(sx * (scene.silent_box[0] + scene.silent_box[2]) / 2)].max()))
    assert np.mean(sp) > 0.4 and np.mean(si) < 0.15
    fm = np.array(fm)
    assert (fm[:, 0] > fm[:, 1]).mean() > 0.7  # measured 0.79
    assert fm[:, 0].mean() > 2 * fm[:, 1].mean()
    # without sound both faces weigh the same (1 - face_speak_gain = 0 here: no face cue at all)
    quiet = [c["face"].max() for _, c, _ in ClassicAV(face_speak_gain=0.5).stream_cues(
        iter_frames(tmp_path / "talk.mp4", every4), None)]
    assert np.allclose(quiet, 0.5, atol=0.01)


def test_peak_on_a_face_in_the_interview(shared_dir):
    """`predict` on the split-screen interview: the peak lies in a hand-labelled face box."""
    labels = json.loads(LABELS.read_text())
    path = shared_dir / labels["root"] / labels["videos"]["interview"]
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    gt = {fr["frame"]: np.array(fr["boxes"], np.float32) for fr in labels["frames"] if fr["video"] == "interview"}
    audio = load_audio(path)

    def labelled_only():  # every frame feeds motion, tracks and synchrony; maps only for the labelled ones
        for f in iter_frames(path):
            yield Frame(f.index, f.time, f.rgb, selected=f.index in gt)

    def hits(cfg):
        n = 0
        for pred in ClassicAV(cfg).stream(labelled_only(), audio):
            if pred.index in gt:
                s = pred.saliency
                y, x = np.unravel_index(np.argmax(s), s.shape)
                X, Y = (x + 0.5) * 1280 / s.shape[1], (y + 0.5) * 720 / s.shape[0]
                b = gt[pred.index]
                n += bool(((b[:, 0] <= X) & (X <= b[:, 2]) & (b[:, 1] <= Y) & (Y <= b[:, 3])).any())
        return n

    assert hits(ClassicAVConfig()) >= 5  # of 6 labelled frames (measured: 6/6)
    assert hits(ClassicAVConfig.v1()) <= 3  # v1 puts it on the chest/hands (measured: 2/6)
