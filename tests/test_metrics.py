"""Tests of avsal.metrics and avsal.evaluate.imresize against the cvzoya MATLAB metrics.

* Parity fixtures (tests/data/parity, from the original code under Octave 7.3, with the random
  draws recorded): every case x every metric, tolerances of the fixtures' README.
* Spec table (evaluation-metrics.md section 5), deterministic columns, regenerated with the
  spec's input script; skipped when ../shared/specs is not available.
* NaN conventions, input errors, seeding, compute_metrics.
* The fast (vectorised) AUCs against slow loop transcriptions of the definitions written
  below, on small random maps including quantised maps with ties and values on the 0.1 grid.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from avsal import metrics as M
from avsal.evaluate import imresize

DATA = Path(__file__).parent / "data" / "parity"
CASES = sorted(p.stem for p in DATA.glob("*.npz"))

TOL_DET = 1e-10  # deterministic metrics
TOL_DRAWS = 1e-12  # random metrics with the recorded draws injected
TOL_RESIZE = 1e-13  # imresize vs the map the original code saw


def load(case):
    z = dict(np.load(DATA / f"{case}.npz", allow_pickle=False))
    meta = json.loads((DATA / f"{case}.json").read_text())
    return z, meta


def test_fixtures_present_and_intact():
    assert len(CASES) == 9
    for case in CASES:
        z, meta = load(case)
        for key, info in meta["arrays"].items():
            arr = np.ascontiguousarray(z[key])
            assert str(arr.dtype) == info["dtype"] and list(arr.shape) == info["shape"], (case, key)
            assert hashlib.sha256(arr.tobytes()).hexdigest() == info["sha256"], (case, key)


# --------------------------------------------------------------------------------------
# parity fixtures
# --------------------------------------------------------------------------------------


def _compute(name, S, z):
    if name == "AUC_Judd":
        return M.auc_judd(S, z["fix"], jitter=z["judd_jitter"])
    if name == "AUC_Judd_nojitter":
        return M.auc_judd(S, z["fix"], jitter=False)
    if name == "AUC_Borji":
        return M.auc_borji(S, z["fix"], n_splits=100, step=0.1, indices=z["borji_idx"])
    if name == "AUC_shuffled":
        return M.auc_shuffled(S, z["fix"], z["other"], n_splits=100, step=0.1,
                              permutations=z["shuf_perm"])
    if name == "NSS":
        return M.nss(S, z["fix"])
    if name == "CC":
        return M.cc(S, z["dens"])
    if name == "SIM":
        return M.sim(S, z["dens"])
    if name == "KLdiv":
        return M.kld(S, z["dens"])
    if name == "InfoGain":
        return M.info_gain(S, z["fix"], z["baseline"])
    raise KeyError(name)


METRICS = ["AUC_Judd", "AUC_Judd_nojitter", "AUC_Borji", "AUC_shuffled", "NSS", "CC", "SIM",
           "KLdiv", "InfoGain"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", METRICS)
def test_parity_fixture(case, name):
    z, meta = load(case)
    ref = meta["metrics"][name]
    S = z.get("sal_resized", z["sal"])  # the map at fixation size, as the original saw it
    got = _compute(name, S, z)
    tol = TOL_DRAWS if name in meta["needs_draws"] else TOL_DET
    assert abs(got - ref) <= tol, (case, name, got, ref)


@pytest.mark.parametrize("case", CASES)
def test_parity_compute_metrics(case):
    z, meta = load(case)
    ref = meta["metrics"]
    S = z.get("sal_resized", z["sal"])
    got = M.compute_metrics(S, fix=z["fix"], dens=z["dens"], other=z["other"],
                            names=("cc", "nss", "sim", "kld", "auc_j_nojitter"))
    for key, name in [("cc", "CC"), ("nss", "NSS"), ("sim", "SIM"), ("kld", "KLdiv"),
                      ("auc_j_nojitter", "AUC_Judd_nojitter")]:
        assert abs(got[key] - ref[name]) <= TOL_DET, (case, key)


def test_shuffled_deterministic_case_without_draws():
    z, meta = load("small_other")
    assert meta["shuffled_is_deterministic"]
    for seed in (0, 1, 12345):
        got = M.auc_shuffled(z["sal"], z["fix"], z["other"], rng=seed)
        assert abs(got - meta["metrics"]["AUC_shuffled"]) <= TOL_DET


def test_resize_fixture():
    z, meta = load("resize")
    R = imresize(z["sal"], z["fix"].shape)
    assert R.shape == z["fix"].shape and R.dtype == np.float64
    assert np.max(np.abs(R - z["sal_resized"])) <= TOL_RESIZE
    for name in METRICS:
        got = _compute(name, R, z)
        assert abs(got - meta["metrics"][name]) <= TOL_DET, name


# --------------------------------------------------------------------------------------
# spec section 5 table (deterministic columns) and the STAViS per-frame example
# --------------------------------------------------------------------------------------

# case: AUC_Judd jitter=0, NSS, CC, SIM, KLdiv, InfoGain (10 decimals, as printed in the spec)
SPEC_TABLE = {
    "sal_random": (0.4968593167, -0.0391354980, -0.0028586764, 0.4377147272, 1.1306434267,
                   -1.1619759006),
    "sal_dens": (0.9111410307, 1.9415174973, 1.0, 1.0, -4.69e-11, 0.9907161826),
    "sal_const": (np.nan, np.nan, np.nan, np.nan, 0.8171534983, np.nan),
    "sal_smooth": (0.7577060360, 0.9384103384, 0.6705250905, 0.5562413380, 0.6091788396,
                   -0.4296152620),
    "sal_centre": (0.8048199763, 1.1629965758, 0.8342770278, 0.6970077846, 0.3199372532, 0.0),
    "sal_smooth112": (0.7587022083, 0.9425053062, 0.6741879797, 0.5566792453, 0.6088516616,
                      -0.4285934048),
    "sal_smooth_u8.png": (0.7555545064, 0.9400916732, 0.6705147208, 0.5562428386, 0.5922379316,
                          -0.4289224880),
}


def _load_spec_map(d, name):
    if name.endswith(".png"):
        from PIL import Image

        return np.asarray(Image.open(d / name), dtype=np.float64) / 255.0  # im2double
    return np.load(d / f"{name}.npy")


@pytest.mark.parametrize("case", sorted(SPEC_TABLE))
def test_spec_table(spec_inputs, case):
    d = spec_inputs
    fix, dens, base = (np.load(d / f"{n}.npy") for n in ("fix", "dens", "baseline"))
    S = _load_spec_map(d, case)
    if S.shape != fix.shape:
        S = imresize(S, fix.shape)  # what every cvzoya metric does first
    got = (M.auc_judd(S, fix, jitter=False), M.nss(S, fix), M.cc(S, dens), M.sim(S, dens),
           M.kld(S, dens), M.info_gain(S, fix, base))
    for g, r in zip(got, SPEC_TABLE[case]):
        if np.isnan(r):
            assert np.isnan(g)
        elif abs(r) < 1e-9 and r != 0:
            assert abs(g - r) < 1e-13  # KLdiv of the perfect map, printed as -4.69e-11
        else:
            assert abs(g - r) <= 5e-11 + 1e-12, (case, g, r)


def test_spec_stavis_frame_pipeline(spec_inputs):
    """Spec section 5: postprocessMap (sigma-2 blur at 112x112) + bicubic upsampling + metrics."""
    from scipy import ndimage

    d = spec_inputs
    fix, dens = np.load(d / "fix.npy"), np.load(d / "dens.npy")
    x = np.clip(255.0 * np.load(d / "sal_smooth112.npy"), 0, 255)
    x = x / x.max() * 255
    x = (x - x.min()) / (x.max() - x.min())
    i = np.arange(-6, 7)
    h = np.exp(-(i[:, None] ** 2 + i[None, :] ** 2) / 8.0)
    x = ndimage.convolve(x, h / h.sum(), mode="reflect")
    S = imresize(x, fix.shape)
    assert abs(M.cc(S, dens) - 0.73099347089688493) <= TOL_DET
    assert abs(M.sim(S, dens) - 0.56432186476339607) <= TOL_DET
    assert abs(M.nss(S, fix) - 1.0170673728250745) <= TOL_DET


# --------------------------------------------------------------------------------------
# NaN conventions (spec 8.6) and errors
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    z, _ = load("smooth")
    return z


def test_nan_constant_map(small):
    z = small
    C = np.full(z["sal"].shape, 0.37)
    assert np.isnan(M.cc(C, z["dens"]))
    assert np.isnan(M.nss(C, z["fix"]))
    assert np.isnan(M.sim(C, z["dens"]))
    assert np.isnan(M.auc_borji(C, z["fix"]))
    assert np.isnan(M.auc_shuffled(C, z["fix"], z["other"]))
    assert np.isnan(M.info_gain(C, z["fix"], z["baseline"]))
    assert np.isnan(M.auc_judd(C, z["fix"], jitter=False))
    assert np.isfinite(M.kld(C, z["dens"]))
    j = M.auc_judd(C, z["fix"], jitter=True, rng=3)  # random ranking: about 0.5
    assert 0.2 < j < 0.8
    assert np.isnan(M.info_gain(z["sal"], z["fix"], np.ones_like(C)))


def test_nan_no_fixations(small):
    z = small
    none = np.zeros_like(z["fix"])
    assert np.isnan(M.nss(z["sal"], none))
    assert np.isnan(M.auc_judd(z["sal"], none))
    assert np.isnan(M.auc_judd(z["sal"], none, jitter=False))
    assert np.isnan(M.auc_borji(z["sal"], none))
    assert np.isnan(M.auc_shuffled(z["sal"], none, z["other"]))
    assert np.isnan(M.info_gain(z["sal"], none, z["baseline"]))
    one = np.zeros_like(z["fix"])
    one[10, 20] = 1
    assert np.isnan(M.auc_borji(z["sal"], one))  # AUC_Borji needs at least 2 fixations
    assert np.isfinite(M.auc_shuffled(z["sal"], one, z["other"]))
    assert np.isfinite(M.auc_judd(z["sal"], one))


def test_zero_maps(small):
    z = small
    zero = np.zeros(z["sal"].shape)
    assert np.isnan(M.cc(z["sal"], zero))
    assert M.sim(z["sal"], zero) == 0.0  # kept in STAViS's average
    assert M.kld(z["sal"], zero) == 0.0
    assert M.sim(zero, z["dens"]) == 0.0
    assert np.isnan(M.auc_shuffled(z["sal"], z["fix"], zero))  # no other pixels: 0/0
    out = M.compute_metrics(z["sal"], fix=z["fix"], dens=zero, other=z["other"])
    assert np.isnan(out["cc"]) and out["sim"] == 0.0 and np.isfinite(out["auc_j"])


def test_nonfinite_saliency_gives_nan(small):
    z = small
    for bad in (np.nan, np.inf):
        S = z["sal"].copy()
        S[3, 4] = bad
        out = M.compute_metrics(S, fix=z["fix"], dens=z["dens"], other=z["other"],
                                names=tuple(M.METRIC_NAMES))
        assert all(np.isnan(v) for v in out.values()), out
        assert np.isnan(M.info_gain(S, z["fix"], z["baseline"]))
    allnan = np.full(z["sal"].shape, np.nan)
    assert np.isnan(M.auc_judd(allnan, z["fix"]))


def test_shape_mismatch_raises(small):
    z = small
    S, F, G, O, B = z["sal"], z["fix"], z["dens"], z["other"], z["baseline"]
    T = S[:-1]
    calls = [
        lambda: M.cc(T, G), lambda: M.nss(T, F), lambda: M.sim(T, G), lambda: M.kld(T, G),
        lambda: M.auc_judd(T, F), lambda: M.auc_borji(T, F), lambda: M.auc_shuffled(T, F, O),
        lambda: M.auc_shuffled(S, F, O[:, :-1]), lambda: M.info_gain(T, F, B),
        lambda: M.info_gain(S, F, B[:-1]), lambda: M.compute_metrics(T, fix=F, dens=G, other=O),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"shape \(\d+, \d+\).*shape \(\d+, \d+\)"):
            call()
    with pytest.raises(ValueError, match=r"\(89, 160\).*\(90, 160\)"):
        M.cc(T, G)


def test_bad_arguments(small):
    z = small
    S, F, O = z["sal"], z["fix"], z["other"]
    with pytest.raises(ValueError):
        M.cc(S.ravel(), z["dens"].ravel())  # not 2-D
    with pytest.raises(ValueError):
        M.auc_judd(S, F, jitter=np.zeros((2, 2)))
    n_f = int((F > 0).sum())
    with pytest.raises(ValueError):
        M.auc_borji(S, F, indices=np.zeros((n_f + 1, 100), dtype=int))
    with pytest.raises(ValueError):
        M.auc_borji(S, F, indices=np.full((n_f, 100), S.size, dtype=int))
    L = int((O > 0).sum())
    with pytest.raises(ValueError):
        M.auc_shuffled(S, F, O, permutations=np.zeros((L, 100), dtype=int))  # repeated entries
    with pytest.raises(ValueError):
        M.auc_shuffled(S, F, O, permutations=np.tile(np.arange(L)[:, None], (1, 99)))
    with pytest.raises(ValueError):
        M.auc_borji(S, F, n_splits=0)
    with pytest.raises(ValueError):
        M.auc_shuffled(S, F, O, step=0.0)
    with pytest.raises(ValueError):
        M.compute_metrics(S, fix=F, names=("cc",))  # dens missing
    with pytest.raises(ValueError):
        M.compute_metrics(S, fix=F, names=("nope",))
    with pytest.raises(TypeError):
        M.auc_judd(S, F, rng="seed")


# --------------------------------------------------------------------------------------
# seeding and compute_metrics
# --------------------------------------------------------------------------------------


def test_seeded_determinism():
    z, _ = load("smooth_u8")  # ties: the jitter changes AUC-Judd
    S, F, O = z["sal"], z["fix"], z["other"]
    for fn in (lambda r: M.auc_judd(S, F, rng=r), lambda r: M.auc_borji(S, F, rng=r),
               lambda r: M.auc_shuffled(S, F, O, rng=r)):
        assert fn(7) == fn(7)
        assert fn(None) == fn(None) == fn(M.DEFAULT_SEED)
        assert fn(np.random.default_rng(7)) == fn(7)
        assert fn(7) != fn(8)
        g = np.random.default_rng(1)
        assert fn(g) != fn(g)  # a Generator is consumed


def test_compute_metrics_matches_functions():
    z, _ = load("smooth_u8")
    S, F, G, O = z["sal"], z["fix"], z["dens"], z["other"]
    names = ("cc", "nss", "auc_j", "sim", "sauc", "kld", "auc_j_nojitter", "auc_b")
    out = M.compute_metrics(S, fix=F, dens=G, other=O, names=names, rng=11)
    assert list(out) == list(names)
    g = np.random.default_rng(11)  # the same generator, consumed in the same order
    ref = {
        "cc": M.cc(S, G), "nss": M.nss(S, F), "auc_j": M.auc_judd(S, F, rng=g),
        "sim": M.sim(S, G), "sauc": M.auc_shuffled(S, F, O, rng=g), "kld": M.kld(S, G),
        "auc_j_nojitter": M.auc_judd(S, F, jitter=False), "auc_b": M.auc_borji(S, F, rng=g),
    }
    assert out == ref
    assert M.compute_metrics(S, fix=F, dens=G, other=O) == M.compute_metrics(S, F, G, O)


def test_jitter_array_and_inputs_untouched():
    z, meta = load("small_values")
    S, F = z["sal"].copy(), z["fix"].copy()
    j = z["judd_jitter"].copy()
    a = M.auc_judd(S, F, jitter=j)
    assert a == M.auc_judd(S.astype(np.float32).astype(np.float64), F.astype(bool), jitter=j)
    assert np.array_equal(S, z["sal"]) and np.array_equal(j, z["judd_jitter"])
    assert abs(a - meta["metrics"]["AUC_Judd"]) <= TOL_DRAWS


# --------------------------------------------------------------------------------------
# fast AUCs vs slow loop transcriptions of the definitions
# --------------------------------------------------------------------------------------


def slow_minmax_cm(S):
    """Min-max normalised map as a column-major vector, like MATLAB's S(:)."""
    S = np.asarray(S, dtype=np.float64)
    return ((S - S.min()) / (S.max() - S.min())).ravel(order="F")


def slow_trapz(x, y):
    area = 0.0
    for k in range(len(x) - 1):
        area += (x[k + 1] - x[k]) * (y[k] + y[k + 1]) / 2.0
    return area


def slow_judd(S, F, draws=None):
    S = np.asarray(S, dtype=np.float64)
    if draws is not None:
        S = S + draws / 10000000.0
    s = slow_minmax_cm(S)
    f = np.asarray(F).ravel(order="F")
    sth = sorted((v for v, fx in zip(s, f) if fx > 0), reverse=True)
    n_fix, n_pix = len(sth), len(s)
    tp, fp = [0.0], [0.0]
    for i, thresh in enumerate(sth, start=1):
        above = int(np.sum(s >= thresh))
        tp.append(i / n_fix)
        fp.append((above - i) / (n_pix - n_fix))
    tp.append(1.0)
    fp.append(1.0)
    return slow_trapz(fp, tp)


def colon_range(step, limit):
    """0:step:limit as MATLAB/Octave build it: k*step while <= limit, plus an end point
    clipped to the limit when the next k*step overshoots it by rounding only (3 eps)."""
    vals, k = [], 0
    while k * step <= limit:
        vals.append(k * step)
        k += 1
    nxt = k * step
    if abs(nxt - limit) < 3 * 2.0 ** -52 * max(abs(nxt), abs(limit)):
        vals.append(limit)
    return vals


def slow_split_auc(sth, curfix, step, n_neg):
    thresholds = colon_range(step, max(max(sth), max(curfix)))[::-1]
    tp, fp = [0.0], [0.0]
    for t in thresholds:
        tp.append(sum(1 for v in sth if v >= t) / len(sth))
        fp.append(sum(1 for v in curfix if v >= t) / n_neg)
    tp.append(1.0)
    fp.append(1.0)
    return slow_trapz(fp, tp)


def slow_borji(S, F, idx, step=0.1):
    s = slow_minmax_cm(S)
    sth = s[np.asarray(F).ravel(order="F") > 0]
    return float(np.mean([slow_split_auc(sth, s[idx[:, j]], step, len(sth))
                          for j in range(idx.shape[1])]))


def slow_shuffled(S, F, O, perm, step=0.1):
    s = slow_minmax_cm(S)
    sth = s[np.asarray(F).ravel(order="F") > 0]
    ind = np.flatnonzero(np.asarray(O).ravel(order="F") > 0)
    n_neg = min(len(sth), len(ind))
    return float(np.mean([slow_split_auc(sth, s[ind[perm[:n_neg, j]]], step, n_neg)
                          for j in range(perm.shape[1])]))


def random_case(rng, kind):
    h, w = int(rng.integers(5, 16)), int(rng.integers(5, 16))
    if kind == "continuous":
        S = rng.random((h, w)) ** 2
    elif kind == "uint8":
        S = rng.integers(0, 256, (h, w)).astype(np.uint8) / 255.0  # im2double: ties
    elif kind == "tenths":
        S = rng.integers(0, 11, (h, w)) / 10.0  # values exactly on the 0.1 grid
    else:  # few levels, not starting at 0
        S = 3.0 + rng.integers(0, 4, (h, w)) * 0.25
    n = h * w
    n_fix = int(rng.integers(2, max(3, n // 4)))
    flat = rng.choice(n, n_fix + int(rng.integers(0, n // 3)), replace=False)
    F = np.zeros(n, np.uint8)
    F[flat[:n_fix]] = 1
    O = np.zeros(n)
    O[flat[n_fix:]] = 1.0
    return S, F.reshape(h, w), O.reshape(h, w)


KINDS = ["continuous", "uint8", "tenths", "levels"]


@pytest.mark.parametrize("kind", KINDS)
def test_fast_vs_slow_aucs(kind):
    rng = np.random.default_rng(100 + KINDS.index(kind))
    for _ in range(25):
        S, F, O = random_case(rng, kind)
        if S.max() == S.min():
            continue
        h, w = S.shape
        n_fix = int(F.sum())
        draws = rng.random((h, w))
        assert abs(M.auc_judd(S, F, jitter=draws) - slow_judd(S, F, draws)) <= 1e-12
        assert abs(M.auc_judd(S, F, jitter=False) - slow_judd(S, F)) <= 1e-12
        step = 0.1 if rng.random() < 0.7 else float(rng.choice([0.05, 0.25, 0.3, 1.0 / 3]))
        idx = rng.integers(0, h * w, size=(n_fix, 7))
        fast = M.auc_borji(S, F, n_splits=7, step=step, indices=idx)
        assert abs(fast - slow_borji(S, F, idx, step)) <= 1e-12
        L = int((O > 0).sum())
        if L:
            perm = np.argsort(rng.random((L, 7)), axis=0)
            fast = M.auc_shuffled(S, F, O, n_splits=7, step=step, permutations=perm)
            assert abs(fast - slow_shuffled(S, F, O, perm, step)) <= 1e-12


def test_colon_end_point_rule():
    """0:0.1:0.6 has the end point 0.6 although 6*0.1 > 0.6; the fast code must use it."""
    assert 6 * 0.1 > 0.6 and colon_range(0.1, 0.6)[-1] == 0.6 and len(colon_range(0.1, 0.6)) == 7
    S = np.array([[0.0, 0.6, 0.3, 1.0], [0.2, 0.6, 0.5, 0.1]])
    F = np.array([[0, 1, 0, 0], [1, 0, 1, 0]])
    idx = np.array([[0, 1], [6, 4], [4, 5]])  # column-major indices; split maxima 0.6, 0.6
    fast = M.auc_borji(S, F, n_splits=2, indices=idx)
    assert abs(fast - slow_borji(S, F, idx)) <= 1e-15
    plain = []  # the same without the end point, to show the rule matters here
    s = slow_minmax_cm(S)
    sth = s[F.ravel(order="F") > 0]
    for j in range(2):
        neg = s[idx[:, j]]
        ts = [k * 0.1 for k in range(7) if k * 0.1 <= max(max(sth), max(neg))][::-1]
        tp = [0.0] + [np.mean(sth >= t) for t in ts] + [1.0]
        fp = [0.0] + [np.mean(neg >= t) for t in ts] + [1.0]
        plain.append(slow_trapz(fp, tp))
    assert abs(fast - np.mean(plain)) > 1e-3


def test_default_sampling_matches_replayed_distribution():
    """The default sAUC draw (bin counts / subset sampling) has the distribution of randperm."""
    rng = np.random.default_rng(5)
    for S in (rng.random((12, 15)), rng.integers(0, 11, (12, 15)) / 10.0):  # 2nd: fallback path
        F = np.zeros(S.shape, np.uint8)
        O = np.zeros(S.shape)
        flat = rng.choice(S.size, 60, replace=False)
        F.flat[flat[:10]] = 1  # 10 negatives out of L = 50 per split
        O.flat[flat[10:]] = 1
        L, n_splits = 50, 4000
        perm = np.argsort(rng.random((L, n_splits)), axis=0)
        ref = [M.auc_shuffled(S, F, O, n_splits=1, permutations=perm[:, j:j + 1])
               for j in range(400)]
        sd = np.std(ref)
        a = M.auc_shuffled(S, F, O, n_splits=n_splits, permutations=perm)
        b = M.auc_shuffled(S, F, O, n_splits=n_splits, rng=9)
        assert abs(a - b) < 5 * sd * np.sqrt(2.0 / n_splits)


def test_sample_subsets_uniform():
    g = np.random.default_rng(0)
    for n, k in ((50, 5), (10, 4)):  # sparse (draw and deduplicate) and dense (random keys)
        sel = M._sample_subsets(g, n, k, 20000)
        assert sel.shape == (k, 20000)
        srt = np.sort(sel, axis=0)
        assert np.all(srt[1:] != srt[:-1]) and sel.min() >= 0 and sel.max() < n
        freq = np.bincount(sel.ravel(), minlength=n) / 20000.0
        assert np.allclose(freq, k / n, atol=5 * np.sqrt(k / n / 20000.0))


# --------------------------------------------------------------------------------------
# imresize
# --------------------------------------------------------------------------------------


def test_imresize_identity_and_errors():
    a = np.random.default_rng(0).random((7, 9))
    r = imresize(a, (7, 9))
    assert np.array_equal(r, a) and r is not a
    assert imresize(a.astype(np.float32), (7, 9)).dtype == np.float64
    rows_only = imresize(a, (14, 9))  # columns are resized independently, none changes size
    assert np.array_equal(rows_only[:, 4], imresize(a[:, 4:5], (14, 1))[:, 0])
    with pytest.raises(ValueError):
        imresize(a, (0, 3))
    with pytest.raises(ValueError):
        imresize(a[0], (3, 3))
    with pytest.raises(ValueError):
        imresize(a, (3.5, 3))


def test_imresize_properties():
    a = np.full((10, 12), 0.3)
    for shape in ((31, 17), (5, 4), (3, 40), (10, 5)):
        assert np.allclose(imresize(a, shape), 0.3, atol=1e-15)  # weights sum to 1
    # shrinking by 2 (antialiased, symmetric kernel) keeps a linear ramp in the interior
    ramp = np.tile(np.arange(40.0), (6, 1))
    r = imresize(ramp, (6, 20))
    u = 2 * np.arange(1, 21) - 0.5 - 1  # input coordinate of each output column, 0-based
    assert np.allclose(r[:, 3:-3], u[3:-3], atol=1e-12)
    # upsampling interpolates: integer factor 3 hits the input pixels at the centres
    b = np.random.default_rng(1).random((8, 8))
    assert np.allclose(imresize(b, (24, 24))[1::3, 1::3], b, atol=1e-14)
    # mirrored borders: a map symmetric about its centre stays symmetric
    c = np.add.outer(np.hanning(9), np.hanning(11))
    rc = imresize(c, (20, 25))
    assert np.allclose(rc, rc[::-1, ::-1], atol=1e-14)


def test_metric_table_is_the_single_source():
    """``METRICS`` owns the names, aliases, labels, inputs and randomness that the rest reads."""
    from avsal.evaluate import gaze, protocol

    assert protocol.PAPER_METRICS is M.PAPER_METRICS == ("cc", "nss", "auc_j", "sim", "sauc")
    assert protocol.METRIC_LABELS is M.METRIC_LABELS and protocol.parse_metrics is M.parse_metrics
    assert gaze.GAZE_METRICS == (*M.PAPER_METRICS, "kld")
    assert M.METRIC_NAMES == {n: s.inputs for n, s in M.METRICS.items()}
    assert M.METRIC_LABELS == {"cc": "CC", "nss": "NSS", "auc_j": "AUC-J", "sim": "SIM", "sauc": "sAUC",
                               "kld": "KLD", "auc_b": "AUC-B", "auc_j_nojitter": "AUC-J (no jitter)"}
    # parse_metrics accepts each name and alias of the table (any case, blanks) and nothing else
    accepted = {a: n for n, s in M.METRICS.items() for a in (n, *s.aliases)}
    assert len(accepted) == sum(1 + len(s.aliases) for s in M.METRICS.values())  # no alias shared
    for a, n in accepted.items():
        assert M.parse_metrics(f" {a.upper()} ") == (n,)
    for bad in ("emd", "auc", "ig", "info_gain", "s_auc", "cc2", "auc-judd-"):
        assert bad not in accepted
        with pytest.raises(ValueError, match="unknown metric") as e:
            M.parse_metrics(f"cc,{bad}")
        assert all(n in str(e.value) for n in M.METRICS)
    # the inputs and randomness columns tell what compute_metrics needs and consumes
    z, _ = load("smooth_u8")
    maps = {"fix": z["fix"], "dens": z["dens"], "other": z["other"]}
    for n, s in M.METRICS.items():
        g = np.random.default_rng(3)
        before = g.bit_generator.state
        v = M.compute_metrics(z["sal"], names=(n,), rng=g, **{k: maps[k] for k in s.inputs})[n]
        assert np.isfinite(v), n
        assert (g.bit_generator.state != before) == s.random, n
        for missing in s.inputs:
            with pytest.raises(ValueError, match=f"{missing} is required"):
                M.compute_metrics(z["sal"], names=(n,), **{k: maps[k] for k in s.inputs if k != missing})
    assert M.needs_input(("cc", "sauc"), "other") and not M.needs_input(M.PAPER_METRICS[:4], "other")
    assert M.metric_label("auc_b") == "AUC-B" and M.metric_label("mad") == "mad"
