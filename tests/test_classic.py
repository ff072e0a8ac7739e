"""The training-free model: GBVS equilibria, static saliency, cues, streaming, quality on real fixations."""

from __future__ import annotations

import glob

import numpy as np
import pytest

from avsal.io import AudioTrack, Sampling, iter_frames, load_audio
from avsal.models import create_model, list_models
from avsal.models.classic import ClassicAV, centre_prior, pearson_rows
from avsal.models.gbvs import _distance_kernel, gbvs, gbvs_activation, gbvs_normalisation


def _power_iteration(P: np.ndarray, iters: int = 20000) -> np.ndarray:
    pi = np.full(P.shape[0], 1.0 / P.shape[0])
    for _ in range(iters):
        new = pi @ P
        if np.abs(new - pi).max() < 1e-15:
            break
        pi = new
    return pi / pi.sum()


def test_gbvs_closed_form_equals_markov_chain_equilibrium():
    rng = np.random.default_rng(0)
    rows, cols = 5, 7
    maps = rng.uniform(0.01, 1.0, (3, rows * cols)).astype(np.float32)
    f_act = _distance_kernel(rows, cols, 0.15).astype(np.float64)
    f_norm = _distance_kernel(rows, cols, 0.3).astype(np.float64)
    act = gbvs_activation(maps, f_act.astype(np.float32), log_eps=0.05)
    norm = gbvs_normalisation(act, f_norm.astype(np.float32))
    for k in range(3):
        logm = np.log(maps[k] / maps[k].max() + 0.05).astype(np.float64)
        w = np.abs(logm[:, None] - logm[None, :]) * f_act  # activation graph, Harel et al. 2006 §2.2
        pi = _power_iteration(w / w.sum(1, keepdims=True))
        np.testing.assert_allclose(act[k], pi, rtol=2e-4, atol=1e-7)
        a = act[k].astype(np.float64)
        w2 = a[None, :] * f_norm  # normalisation graph: edge i->j weighted by A_j (§2.3)
        pi2 = _power_iteration(w2 / w2.sum(1, keepdims=True))
        np.testing.assert_allclose(norm[k], pi2, rtol=2e-4, atol=1e-7)


def test_gbvs_pop_out_and_range():
    img = np.full((90, 160, 3), 0.5, np.float32)
    yy, xx = np.mgrid[0:90, 0:160]
    img[(yy - 30) ** 2 + (xx - 120) ** 2 < 64] = (0.9, 0.1, 0.1)  # a red dot on grey, off centre
    s = gbvs(img)
    assert s.dtype == np.float32 and s.min() >= 0 and s.max() == pytest.approx(1.0)
    r, c = np.unravel_index(np.argmax(s), s.shape)
    assert abs(r / s.shape[0] - 30 / 90) < 0.12 and abs(c / s.shape[1] - 120 / 160) < 0.08
    flat = gbvs(np.full((90, 160, 3), 0.3, np.float32))
    assert np.isfinite(flat).all() and flat.max() == 0.0  # featureless: no saliency, no NaN


def test_static_saliency_contract():
    m = ClassicAV()
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (241, 321, 3), dtype=np.uint8)
    s = m.static_saliency(img)
    assert s.shape == (241, 321) and s.dtype == np.float32
    assert 0.0 <= s.min() and s.max() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        m.static_saliency(img.astype(np.float32))
    with pytest.raises(ValueError):
        m.static_saliency(img[..., 0])


def test_registry():
    names = [e.name for e in list_models()]
    assert "classic-av" in names
    assert isinstance(create_model("classic-av", w_sync=0.1), ClassicAV)
    with pytest.raises(KeyError, match="available"):
        create_model("nope")
    with pytest.raises(ValueError, match="no weights"):
        create_model("classic-av", weights="x.pth")
    with pytest.raises(TypeError):
        create_model("classic-av", not_a_field=1)


def test_pearson_rows():
    rng = np.random.default_rng(2)
    y = rng.normal(size=50)
    x = np.stack([y * 3 + 1, -y, rng.normal(size=50), np.ones(50)])
    r = pearson_rows(x, y)
    np.testing.assert_allclose(r[:2], [1.0, -1.0], atol=1e-12)
    assert abs(r[2] - np.corrcoef(x[2], y)[0, 1]) < 1e-12 and r[3] == 0.0


def test_centre_prior():
    c = centre_prior(9, 16)
    assert c.shape == (9, 16) and c.max() <= 1 and np.unravel_index(np.argmax(c), c.shape) in [(4, 7), (4, 8)]
    np.testing.assert_allclose(c, c[::-1, ::-1], atol=1e-6)


def _disc_mean(m, centre, r):
    yy, xx = np.mgrid[0:m.shape[0], 0:m.shape[1]]
    return float(m[(yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= (1.5 * r) ** 2].mean())


def _run(path, audio, sampling=None, **cfg):
    model = ClassicAV(**cfg)
    preds = list(model.stream(iter_frames(path, sampling), audio))
    from avsal.models import upsample
    frames = {f.index: f for f in iter_frames(path)}
    h, w = frames[0].rgb.shape[:2]
    return [(p, upsample(p.saliency, h, w)) for p in preds]


def test_synchrony_cue_lifts_the_sounding_object(demo_clip):
    path, scene = demo_clip
    audio = load_audio(path)

    def ratio(**cfg):
        out = _run(path, audio, **cfg)
        a = np.mean([_disc_mean(m, scene.sync_disc_centre(p.time), scene.radius) for p, m in out])
        b = np.mean([_disc_mean(m, scene.steady_disc_centre(p.time), scene.radius) for p, m in out])
        return a / b

    r_off, r_on = ratio(w_sync=0.0), ratio()  # the default weights (v2: w_sync = w_motion = 3)
    assert r_on > r_off * 1.1, (r_off, r_on)
    assert r_on > 1.0  # with the audio cue, the disc that moves with the sound wins


def test_silent_audio_equals_no_sync_cue(demo_clip):
    path, _ = demo_clip
    silent = AudioTrack(samples=np.zeros(16000 * 4, np.float32), sample_rate=16000)
    a = _run(path, silent, Sampling(every=10))
    b = _run(path, None, Sampling(every=10))
    assert [p.index for p, _ in a] == list(range(0, 100, 10))
    for (_, ma), (_, mb) in zip(a, b):
        np.testing.assert_allclose(ma, mb, atol=1e-5)


def test_stream_outputs(small_clip):
    audio = load_audio(small_clip)
    out = _run(small_clip, audio, Sampling(every=4))
    assert [p.index for p, _ in out] == list(range(0, 50, 4))
    times = [p.time for p, _ in out]
    assert times == sorted(times)
    for _, m in out:
        assert m.shape == (96, 128) and m.dtype == np.float32 and m.min() >= 0 and m.max() <= 1.0 + 1e-6
    maps, idx, t = ClassicAV().predict_video(small_clip, Sampling(every=25))
    assert maps.shape == (2, 96, 128) and list(idx) == [0, 25] and np.allclose(t, [0.0, 1.0])


def _nss(s, f):
    z = (s - s.mean()) / s.std(ddof=1)
    return z[f > 0].mean()


def test_static_beats_centre_on_mit1003(shared_dir):
    """Real fixations (MIT1003 samples): the static map beats a centre-Gaussian-only map on NSS and AUC-J."""
    import scipy.io as sio
    from PIL import Image
    from scipy.ndimage import maximum_filter

    from avsal.metrics import auc_judd, nss

    root = shared_dir / "eyetracking" / "images"
    items = []
    i210 = root / "mit1003_i210"
    if i210.is_dir():
        fix = sio.loadmat(i210 / "FIXATIONLOCS" / "i210.mat")["fixations"]
        items.append((np.array(Image.open(i210 / "ALLSTIMULI" / "i210.jpg").convert("RGB")), fix))
    for p in sorted(glob.glob(str(root / "mit1003_iccv_sample" / "stimuli" / "*.jpg"))):
        # Only continuous maps are shipped for these: fixations = local maxima of the density
        d = np.array(Image.open(p.replace("stimuli", "fixation_maps")).convert("L")).astype(float)
        fix = ((d == maximum_filter(d, size=25)) & (d > 0.1 * d.max())).astype(np.uint8)
        items.append((np.array(Image.open(p).convert("RGB")), fix))
    if not items:
        pytest.skip("no MIT1003 samples")
    model = ClassicAV()
    ours, centre = [], []
    for img, fix in items:
        s = model.static_saliency(img).astype(np.float64)
        c = centre_prior(*fix.shape).astype(np.float64)
        ours.append((nss(s, fix), auc_judd(s, fix, jitter=False)))
        centre.append((nss(c, fix), auc_judd(c, fix, jitter=False)))
    ours, centre = np.mean(ours, 0), np.mean(centre, 0)
    assert ours[0] > centre[0] and ours[1] > centre[1], (ours, centre)
    assert ours[0] > 1.0 and ours[1] > 0.78


def test_stream_runs_blas_single_threaded_and_restores_it(small_clip):
    """Idle BLAS workers spin and take a core from the decoder and writers of ``avsal predict``: numpy's BLAS
    runs one thread while the stream is alive and gets its thread count back afterwards."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    with threadpool_limits(limits=2, user_api="blas"):
        if blas_threads() != {2}:
            pytest.skip("this numpy has no BLAS that threadpoolctl can set to 2 threads")
        gen = create_model("classic-av").stream(iter_frames(small_clip), None)
        next(gen)
        assert blas_threads() == {1}
        rest = list(gen)
        assert rest and blas_threads() == {2}
