"""The prepared-root / pseudo-GT CSV owner (avsal.data.layout): round trips and one clear error per bad file."""

import os

import pytest

from avsal.data.layout import (MANIFEST_COLUMNS, ManifestRow, PseudoGtRow, read_manifest, read_pseudo_gt_csv,
                               write_manifest, write_pseudo_gt_csv)
from avsal.errors import InputError

HEADER = ",".join(MANIFEST_COLUMNS)
GOOD = "v1,3,frames/v1/03.jpg,audio/v1/03.h5,2,Banjo,train"


def test_manifest_round_trip(tmp_path):
    rows = [ManifestRow("v1", 3, "frames/v1/03.jpg", "audio/v1/03.h5", 2, "Banjo", "train"),
            ManifestRow("v2", 0, "frames/v2/00.jpg", "", 0, "", "val")]
    path = write_manifest(tmp_path, rows)
    assert path == os.path.join(tmp_path, "manifest.csv")
    assert (tmp_path / "manifest.csv").read_text().splitlines()[:2] == [HEADER, GOOD]
    assert read_manifest(tmp_path) == rows
    assert read_manifest(path) == rows  # the file itself
    assert not [p for p in os.listdir(tmp_path) if p != "manifest.csv"]  # no temporary left behind


def test_manifest_tolerates_bom_crlf_order_and_extra_columns(tmp_path):
    (tmp_path / "manifest.csv").write_bytes(
        ("\ufeffsplit,extra,class_name,class_id,audio,frame,second,clip\r\n"
         "train,x,Banjo,2,audio/v1/03.h5,frames/v1/03.jpg,3,v1\r\n").encode("utf-8"))
    assert read_manifest(tmp_path) == [ManifestRow("v1", 3, "frames/v1/03.jpg", "audio/v1/03.h5", 2, "Banjo",
                                                   "train")]


@pytest.mark.parametrize("text, words", [
    ("clip,second,frame,audio,class_name,split\n", "line 1: missing column(s) class_id"),
    (f"{HEADER}\n{GOOD}\nv1,x,frames/v1/04.jpg,audio/v1/04.h5,2,Banjo,train\n", "line 3: column second: 'x'"),
    (f"{HEADER}\nv1,-1,f.jpg,a.h5,2,Banjo,train\n", "line 2: column second: negative"),
    (f"{HEADER}\nv1,3,f.jpg,a.h5,two,Banjo,train\n", "line 2: column class_id: 'two' is not an integer"),
    (f"{HEADER}\n../x,3,f.jpg,a.h5,2,Banjo,train\n", "line 2: column clip: '../x'"),
    (f"{HEADER}\nv1,3,,a.h5,2,Banjo,train\n", "line 2: column frame is empty"),
    (f"{HEADER}\nv1,3,f.jpg,a.h5,2\n", "line 2: 5 fields, the header has 7"),
    (f"{HEADER}\n{GOOD}\n{GOOD}\n", "line 3: clip v1 second 3 is listed twice"),
    ("", "line 1: missing column(s) clip, second"),
])
def test_bad_manifest_names_file_line_and_column(tmp_path, text, words):
    (tmp_path / "manifest.csv").write_text(text)
    with pytest.raises(InputError) as e:
        read_manifest(tmp_path)
    assert e.value.path == str(tmp_path / "manifest.csv")
    assert words in e.value.problem, e.value.problem


def test_missing_or_binary_manifest(tmp_path):
    with pytest.raises(InputError, match="manifest.csv not found: is this a prepared root") as e:
        read_manifest(tmp_path)
    assert e.value.path == str(tmp_path / "manifest.csv")
    (tmp_path / "manifest.csv").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InputError, match="not a UTF-8 text file"):
        read_manifest(tmp_path)


def test_pseudo_gt_round_trip_and_errors(tmp_path):
    rows = [PseudoGtRow("v1", 1, "v1/01.png"), PseudoGtRow("v1", 2, "v1/02.png")]
    write_pseudo_gt_csv(tmp_path, rows)
    assert (tmp_path / "pseudo_gt.csv").read_text() == "clip,second,path\nv1,1,v1/01.png\nv1,2,v1/02.png\n"
    assert read_pseudo_gt_csv(tmp_path) == rows
    path = str(tmp_path / "pseudo_gt.csv")
    for text, words in [("clip,path\nv1,v1/01.png\n", "line 1: missing column(s) second"),
                        ("clip,second,path\nv1,1.5,v1/01.png\n", "line 2: column second: '1.5' is not an integer"),
                        ("clip,second,path\nv1,1,\n", "line 2: column path is empty"),
                        ("clip,second,path\nv1,1,a.png\nv1,1,b.png\n", "line 3: clip v1 second 1 is listed twice")]:
        (tmp_path / "pseudo_gt.csv").write_text(text)
        with pytest.raises(InputError) as e:
            read_pseudo_gt_csv(tmp_path)
        assert e.value.path == path and words in e.value.problem, e.value.problem
    os.remove(path)
    with pytest.raises(InputError, match="is this a pseudo-GT folder"):
        read_pseudo_gt_csv(tmp_path)


def test_training_readers_use_the_checked_reader(tmp_path):
    """The training-side readers (datasets.read_manifest / read_pseudo_gt) raise the same one error."""
    pytest.importorskip("torch")
    from avsal.data.datasets import read_manifest as read_samples
    from avsal.data.datasets import read_pseudo_gt

    (tmp_path / "manifest.csv").write_text(f"{HEADER}\nv1,3,f.jpg,a.h5,,Banjo,train\n")
    with pytest.raises(InputError, match=r"manifest\.csv: line 2: column class_id: '' is not an integer"):
        read_samples(tmp_path, split="train")
    (tmp_path / "pseudo_gt.csv").write_text("clip,second\nv1,3\n")
    with pytest.raises(InputError, match=r"pseudo_gt\.csv: line 1: missing column\(s\) path"):
        read_pseudo_gt(tmp_path)
    (tmp_path / "manifest.csv").write_text(f"{HEADER}\nv2,1,f.jpg,a.h5,0,A,val\n{GOOD}\n")
    samples = read_samples(tmp_path, split="train")
    assert [(s.clip, s.second, s.frame, s.class_id) for s in samples] == [("v1", 3, str(tmp_path / "frames/v1/03.jpg"),
                                                                          2)]
