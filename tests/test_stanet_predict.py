"""STA video inference (feature reuse == upstream-style triplets), `avsal predict --model stanet-sta`,
and the STANet audio features."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from scipy import signal

from avsal.cli import main
from avsal.io import iter_frames, load_audio
from avsal.io.audio import (AudioTrack, read_features_h5, stft_features, stft_features_at, stft_windows,
                            write_features_h5)
from avsal.models.checkpoints import save_weights
from avsal.models.stanet import STANet
from avsal.models.stanet.predictor import STAVideoModel


def _sta(seed=0):
    torch.manual_seed(seed)
    net = STANet(tiny=True).eval()
    with torch.no_grad():  # random heads with some contrast, so maps differ between frames
        for p in net.parameters():
            if p.ndim > 1 and p.shape[0] != p.numel():
                p.normal_(0, 0.1)
    return net


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_feature_reuse_equals_full_triplets(small_clip, batch_size):
    frames = [f for f in iter_frames(small_clip) if f.index % 5 == 0]
    audio = load_audio(small_clip)
    model = STAVideoModel(_sta(), input_size=64, batch_size=batch_size, blur_sigma=2.0)
    preds = list(model.stream(iter(frames), audio))
    assert [p.index for p in preds] == [f.index for f in frames]
    ref = model.naive_triplets(frames, audio, batch_size=2)
    got = np.stack([p.saliency for p in preds])
    assert got.shape == (10, 64, 64) and got.max() <= 1 + 1e-6 and got.min() >= 0
    np.testing.assert_allclose(got, ref, atol=1e-5)
    assert np.abs(got[0] - got[5]).max() > 1e-3  # frames differ
    # the first frame's missing t-1 is itself: same as running the triplet (0, 0, 1) through the network
    with torch.no_grad():
        from avsal.models.stanet.predictor import preprocess
        x = torch.stack([preprocess(f.rgb, 64) for f in (frames[0], frames[0], frames[1])])[None]
        a = torch.from_numpy(stft_features_at(audio, [frames[i].time for i in (0, 0, 1)]))[None]
        m0 = model.postprocess(model.net(x, a)[1])[0]
    np.testing.assert_allclose(got[0], m0, atol=1e-5)


def test_predict_cli_with_stanet_sta(small_clip, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["predict", str(small_clip), "--out", str(out), "--model", "stanet-sta", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "needs trained weights" in err and "never predicts with random weights" in err
    assert not out.exists() or os.listdir(out) == []
    w = tmp_path / "sta_tiny.safetensors"
    save_weights(_sta().state_dict(), w, "stanet-sta", {"tiny": True})
    rc = main(["predict", str(small_clip), "--out", str(out), "--model", "stanet-sta", "--weights", str(w),
               "--every", "10", "--batch-size", "2", "--set", "input_size=64", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    meta = json.loads((out / "small" / "meta.json").read_text())
    assert meta["model"] == "stanet-sta" and meta["frames_predicted"] == 5
    assert meta["model_config"]["network"]["tiny"] is True and len(meta["weights_sha256"]) == 64
    assert len(os.listdir(out / "small" / "maps")) == 5
    rc = main(["predict", str(small_clip), "--out", str(tmp_path / "o2"), "--model", "stanet-s", "--weights",
               str(w), "--quiet"])
    assert rc == 2 and "not a saliency model" in capsys.readouterr().err


def test_stft_features_equal_scipy():
    rng = np.random.default_rng(0)
    wave = rng.normal(0, 0.5, 16000 * 2 + 777)
    wave[100] = 3.0  # clipped to 1
    feats = stft_features(wave)
    assert feats.shape == (2, 81, 199) and feats.dtype == np.float32
    for k in range(2):
        w = np.clip(wave[k * 16000:(k + 1) * 16000], -1, 1)
        _, _, s = signal.spectrogram(w, 16000, nperseg=160, noverlap=80)
        s = np.log(s + 1e-7)
        np.testing.assert_allclose(feats[k], (s - s.mean()) / (s.std() + 1e-9), rtol=1e-5, atol=1e-5)
    silent = stft_features(np.zeros(16000))
    assert np.isfinite(silent).all() and np.abs(silent).max() < 1e-4
    assert stft_features(np.zeros(100)).shape == (0, 81, 199)
    with pytest.raises(ValueError):
        stft_features(np.zeros((2, 16000)))


def test_per_frame_features_are_centred(tmp_path):
    samples = np.zeros(16000 * 3, np.float32)
    samples[16000:32000] = np.sin(np.arange(16000) * 0.3)  # sound during the second second
    track = AudioTrack(samples, 16000)
    f = stft_features_at(track, [1.5, 0.0])
    np.testing.assert_allclose(f[0], stft_windows(samples[8000 * 2:8000 * 4][None])[0], atol=1e-6)
    np.testing.assert_allclose(f[1], stft_windows(np.r_[np.zeros(8000), samples[:8000]][None])[0], atol=1e-6)
    assert np.array_equal(stft_features_at(None, [0.0, 1.0]), np.zeros((2, 81, 199), np.float32))
    p = tmp_path / "a.h5"
    write_features_h5(p, f[0])
    back = read_features_h5(p)
    assert back.shape == (81, 199) and np.array_equal(back, f[0])
    import h5py

    with h5py.File(p) as h:
        assert list(h.keys()) == ["dataset"]  # upstream's key


@pytest.mark.slow
def test_real_clip_with_full_size_upstream_format_weights(shared_dir, tmp_path):
    """`avsal predict --model stanet-sta` on a real clip with random weights in the upstream .pth format."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from stanet_reference import load_keys, make_upstream_state_dict

    clip = shared_dir / "videos" / "research_only" / "ave_0lFf-HP86Q0_female_speech.mp4"
    if not clip.exists():
        pytest.skip("AVE clip not present")
    sd = make_upstream_state_dict(load_keys("stanet-sta"), 0)
    w = tmp_path / "STANet.pth"
    torch.save({"module." + k if not k.startswith("module.") else k: v for k, v in sd.items()}, w)
    del sd
    out = tmp_path / "out"
    rc = main(["predict", str(clip), "--out", str(out), "--model", "stanet-sta", "--weights", str(w),
               "--fps", "0.5", "--quiet"])
    assert rc == 0
    meta = json.loads((out / clip.stem / "meta.json").read_text())
    assert meta["frames_predicted"] == 5 and meta["has_audio"]
    from PIL import Image

    m = np.asarray(Image.open(out / clip.stem / "maps" / f"{meta and sorted(os.listdir(out / clip.stem / 'maps'))[0]}"))
    assert m.shape == (240, 320) and m.max() == 255
