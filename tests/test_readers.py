"""Readers on real data (skipped without ../shared/data) and on small synthetic files.

* STAViS fold lists (vinet_v2 copies, SOURCES.md 5b): every list parses; AVAD's 45 entries / 42 videos.
* DIEM raw gaze (SOURCES.md 3): both clips parse; frame counts agree with the DIEM fold list; the
  screen-to-video mapping (video centred on a 1280x960 screen) is checked against the data.
* MIT1003 layout (SOURCES.md 4): i210 with its 259 fixated pixels, the 8-image ICCV sample.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from PIL import Image

from avsal import metrics as M
from avsal.errors import InputError
from avsal.evaluate import readers as R

DIEM_VIDEOS = {"arctic_bears_1066x710": (49, 2785, (710, 1066)),
               "documentary_dolphins_1280x720": (124, 3180, (720, 1280))}


# --------------------------------------------------------------------------------------
# fold lists
# --------------------------------------------------------------------------------------


def test_real_fold_lists(shared_dir):
    d = shared_dir / "metadata" / "stavis_fold_lists"
    files = sorted(d.glob("*.txt"))
    assert len(files) >= 58  # SOURCES.md 5b lists 58; the folder holds 59
    for f in files:
        assert R.read_fold_list(f), f
    avad = [e for s in (1, 2, 3) for e in R.read_fold_list(d / f"AVAD_list_test_{s}_fps.txt")]
    assert len(avad) == 45 and len({e.name for e in avad}) == 42  # spec 1.2: 3 videos tested twice
    assert avad[0] == R.FoldEntry("V32_Dancers", 202, 28.666571)
    assert len(R.read_fold_list(d / "DIEM_list_test_fps.txt")) == 17
    # the layout finds DIEM's single list for every split
    ds = R.DATASETS["DIEM"]
    lay = R.StavisLayout.__new__(R.StavisLayout)
    lay.fold_lists = d
    assert lay.fold_list_path(ds, 2).name == "DIEM_list_test_fps.txt"
    assert lay.fold_list_path(R.DATASETS["ETMD"], 3).name == "ETMD_av_list_test_3_fps.txt"


def test_dataset_names(tmp_path):
    assert R.resolve_dataset("coutrot_db2").name == "Coutrot2"
    assert R.resolve_dataset("etmd_av").folder == "ETMD_av"
    assert R.resolve_dataset("Sum-Me").pred_folder == "summe"
    (tmp_path / "MVVA").mkdir()
    custom = R.resolve_dataset("MVVA", tmp_path)
    assert custom.folder == "MVVA" and custom.aggregation == "pooled"
    with pytest.raises(InputError, match="unknown dataset 'LEDOV'.*found: MVVA"):
        R.resolve_dataset("LEDOV", tmp_path)


def test_stavis_layout_paths(tmp_path):
    (tmp_path / "data" / "annotations" / "AVAD").mkdir(parents=True)
    lay = R.StavisLayout(tmp_path)  # the parent of data/ is accepted
    assert lay.root == tmp_path / "data"
    ds = lay.dataset("avad")
    assert lay.eye_map_path(ds, "V1", 7).as_posix().endswith("annotations/AVAD/V1/maps/eyeMap_00007.jpg")
    assert lay.fix_map_path(ds, "V1", 12).name == "fixMap_00012.mat"
    assert lay.frame_path(ds, "V1", 3).as_posix().endswith("video_frames/AVAD/V1/img_00003.jpg")
    assert lay.audio_path(ds, "V1").as_posix().endswith("video_audio/AVAD/V1/V1.wav")
    assert lay.fold_list_path(ds, 2).name == "AVAD_list_test_2_fps.txt"
    fr = tmp_path / "data" / "video_frames" / "AVAD" / "V1"
    fr.mkdir(parents=True)
    for k in (2, 10, 1):
        (fr / f"img_{k:05d}.jpg").write_bytes(b"")
    assert [p.name for p in lay.list_frames(ds, "V1")] == ["img_00001.jpg", "img_00002.jpg", "img_00010.jpg"]
    with pytest.raises(InputError, match="no annotation folder for dataset DIEM"):
        lay.dataset("DIEM")


def test_mat_v73_and_logical(tmp_path):
    h5py = pytest.importorskip("h5py")
    m = np.zeros((3, 5), np.uint8)
    m[1, 4] = 1
    p = tmp_path / "v73.mat"
    with h5py.File(p, "w") as f:  # MATLAB v7.3 stores the transpose (column-major)
        f["eyeMap"] = m.T
    assert np.array_equal(R.read_mat_map(p), m)
    q = tmp_path / "v5.mat"
    scipy.io.savemat(q, {"eyeMap": m.astype(bool)})
    assert np.array_equal(R.read_mat_map(q) != 0, m != 0)


# --------------------------------------------------------------------------------------
# DIEM
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def diem(shared_dir):
    root = shared_dir / "eyetracking" / "video_diem"
    if not root.is_dir():
        pytest.skip("DIEM gaze files not present")
    return {v: R.load_diem_video(root / v) for v in DIEM_VIDEOS}


def test_diem_real_files(diem, shared_dir):
    lists = shared_dir / "metadata" / "stavis_fold_lists"
    nframes = {e.name: e.nframes for f in ("DIEM_list_train_fps.txt", "DIEM_list_test_fps.txt")
               for e in R.read_fold_list(lists / f)}
    for v, (n_viewers, n_frames, size) in DIEM_VIDEOS.items():
        g = diem[v]
        assert len(g.viewers) == n_viewers and g.nframes == n_frames and g.size == size
        assert nframes[v] == n_frames  # the gaze files cover exactly the frames STAViS lists
        if v == "arctic_bears_1066x710":
            assert g.viewers[0] == "diem5s01.asc_15"
        # left eye: fixations, saccades, blinks, errors all present
        assert set(np.unique(g.event)) == {-1, 0, 1, 2}


def test_diem_screen_to_video_mapping(diem):
    """The video is shown at native size, centred on a 1280x960 screen (checked on the data)."""
    for v, g in diem.items():
        h, w = g.size
        f = g.event == 1
        x, y = g.x[f], g.y[f]
        inside = np.mean((x >= 0) & (x < w) & (y >= 0) & (y < h))
        assert inside > 0.99, (v, inside)  # 99.8 % and 99.2 %
        # the fixation medians sit near the video centre
        assert 0.45 < np.median(x) / w < 0.55 and 0.45 < np.median(y) / h < 0.56, v
    # arctic_bears (1066 px wide): the horizontal fixation density collapses at the frame edges
    # x = 107 and 1173 on the screen, i.e. 0 and W in video coordinates
    g = diem["arctic_bears_1066x710"]
    x = g.x[g.event == 1]
    for e, sign in ((0.0, -1), (float(g.size[1]), 1)):
        inner = np.sum((sign * (x - e) < 0) & (sign * (x - e) >= -60))
        outer = np.sum((sign * (x - e) >= 0) & (sign * (x - e) < 60))
        assert outer < 0.25 * inner, (e, inner, outer)
    # dolphins (720 px high): without the 120 px vertical offset, > 5 % of the fixations would
    # fall below the frame
    g = diem["documentary_dolphins_1280x720"]
    ys = g.y[g.event == 1] + (960 - 720) / 2
    assert np.mean(ys >= 720) > 0.05


def test_diem_maps(diem):
    g = diem["arctic_bears_1066x710"]
    p = g.points(1000)
    assert p.shape[1] == 2 and 20 < len(p) <= 49
    fm = g.fixation_map(1000)
    assert fm.dtype == np.uint8 and fm.shape == g.size and 0 < fm.sum() <= len(p)
    d = g.density_map(1000)
    assert d.shape == g.size and abs(d.max() - 1) < 1e-12 and d.min() >= 0
    # the density peaks where the fixations are: NSS of the density on its own fixations > 1
    assert M.nss(d, fm) > 1.0
    with pytest.raises(IndexError):
        g.points(g.nframes + 1)


def _diem_file(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(str(v) for v in r) + "\r\n" for r in rows))


def test_diem_synthetic(tmp_path):
    ev = tmp_path / "clip_100x50" / "event_data"
    # screen 1280x960, video 100x50 centred: offset (590, 455)
    _diem_file(ev / "s01.asc_1_clip_100x50.txt",
               [[1, 600.7, 458.2, 1500, 1, 0, 0, 0, 1], [2, 100.0, 100.0, 1500, 1, 0, 0, 0, -1],
                [3, 640.0, 480.0, 1500, 2, 640, 480, 1, 1]])
    _diem_file(ev / "s02.asc_3_clip_100x50.txt", [[1, 689.9, 504.9, 1500, 1, 0, 0, 0, 0]])
    g = R.load_diem_video(tmp_path / "clip_100x50")
    assert g.size == (50, 100) and g.nframes == 3 and g.viewers == ["s01.asc_1", "s02.asc_3"]
    assert np.allclose(g.points(1), [[10.7, 3.2], [99.9, 49.9]])
    fm = g.fixation_map(1)
    assert fm[3, 10] == 1 and fm[49, 99] == 1 and fm.sum() == 2
    assert g.points(2).shape == (0, 2) and not g.density_map(2).any()  # outside the frame: dropped
    assert g.points(3).shape == (0, 2)  # a saccade on the left eye
    assert np.allclose(R.load_diem_video(tmp_path / "clip_100x50", eye="right").points(3), [[50, 25]])
    d = g.density_map(1, sigma=3.0)
    assert np.unravel_index(np.argmax(d), d.shape) in {(3, 10), (49, 99)}
    # bad files
    bad = tmp_path / "b_10x10" / "event_data" / "x.txt"
    _diem_file(bad, [[1, 2, 3]])
    with pytest.raises(InputError, match="9 columns") as e:
        R.load_diem_video(tmp_path / "b_10x10")
    assert e.value.path == str(bad)
    _diem_file(bad, [[1, 2, 3, 4, 1, 5, 6, 7, 1], [1, 2, 3, 4, 1, 5, 6, 7, 1]])
    with pytest.raises(InputError, match="appears twice"):
        R.load_diem_video(tmp_path / "b_10x10")
    bad.write_text("1\tfoo\t3\t4\t1\t5\t6\t7\t1\n")
    with pytest.raises(InputError, match="not a DIEM gaze file"):
        R.read_diem_event_file(bad)
    with pytest.raises(InputError, match="no DIEM gaze files"):
        R.load_diem_video(tmp_path / "nothing_1x1")
    (tmp_path / "noname" / "event_data").mkdir(parents=True)
    _diem_file(tmp_path / "noname" / "event_data" / "a.txt", [[1, 2, 3, 4, 1, 5, 6, 7, 1]])
    with pytest.raises(InputError, match="video size"):
        R.load_diem_video(tmp_path / "noname")
    assert R.load_diem_video(tmp_path / "noname", size=(4, 6)).size == (4, 6)


# --------------------------------------------------------------------------------------
# MIT1003 layout
# --------------------------------------------------------------------------------------


def test_mit1003_i210(shared_dir):
    root = shared_dir / "eyetracking" / "images" / "mit1003_i210"
    if not root.is_dir():
        pytest.skip("MIT1003 sample not present")
    (img,) = R.read_mit1003(root)
    assert img.name == "i210" and img.stimulus is not None and img.stimulus.name == "i210.jpg"
    assert img.density.shape == (675, 1024) and img.density.dtype == np.float64
    assert 0 <= img.density.min() and img.density.max() <= 1
    assert img.fixations.shape == (675, 1024) and int(np.count_nonzero(img.fixations)) == 259
    assert img.baseline is not None and img.baseline.shape == (500, 500)
    # static checks: the GT density predicts its own fixations; the Judd model beats Itti-Koch
    assert M.nss(img.density, img.fixations) > 2.0
    judd = R.read_image_map(root / "MODELS" / "Judd_i210.jpg")
    itti = R.read_image_map(root / "MODELS" / "ittikoch_i210.jpg")
    s_judd = M.compute_metrics(judd, fix=img.fixations, dens=img.density, names=("cc", "nss", "auc_j", "sim"))
    s_itti = M.compute_metrics(itti, fix=img.fixations, dens=img.density, names=("cc", "nss", "auc_j", "sim"))
    for m, v in s_judd.items():
        assert np.isfinite(v) and np.isfinite(s_itti[m])
    assert 0.5 < s_judd["auc_j"] < 1 and 0 < s_judd["cc"] < 1


def test_mit1003_iccv_sample(shared_dir):
    root = shared_dir / "eyetracking" / "images" / "mit1003_iccv_sample"
    if not root.is_dir():
        pytest.skip("MIT1003 ICCV sample not present")
    imgs = R.read_mit1003(root)
    assert len(imgs) == 8 and all(i.fixations is None and i.stimulus is not None for i in imgs)
    assert all(i.density.shape == (768, 1024) for i in imgs)


def test_mit1003_download_layout(tmp_path):
    (tmp_path / "ALLSTIMULI").mkdir()
    (tmp_path / "ALLFIXATIONMAPS").mkdir()
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(tmp_path / "ALLSTIMULI" / "a.jpeg")
    Image.fromarray(np.full((6, 8), 40, np.uint8)).save(tmp_path / "ALLFIXATIONMAPS" / "a_fixMap.jpg")
    pts = np.zeros((6, 8), np.uint8)
    pts[2, 3] = 255
    Image.fromarray(pts).save(tmp_path / "ALLFIXATIONMAPS" / "a_fixPts.jpg", quality=100)
    (img,) = R.read_mit1003(tmp_path)
    assert img.name == "a" and img.stimulus.name == "a.jpeg" and img.fixations[2, 3] == 1
    assert img.fixations.sum() == 1
    Image.fromarray(np.zeros((5, 8), np.uint8)).save(tmp_path / "ALLFIXATIONMAPS" / "a_fixPts.jpg")
    with pytest.raises(InputError, match="differs"):
        R.read_mit1003(tmp_path)
    with pytest.raises(InputError, match="no FIXATIONMAPS"):
        R.read_mit1003(tmp_path / "ALLSTIMULI")
