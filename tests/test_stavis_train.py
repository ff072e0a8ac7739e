"""STAViS training: losses, optimiser groups, clip sampling, and short runs on a synthetic STAViS-layout root."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from avsal.cli import main
from avsal.models.stavis.networks import Stavis
from avsal.models.stavis.training import (StavisTask, StavisTrainDataset, bce_sum, cc, gt_frame, nss, param_groups,
                                          stavis_loss, stavis_train_config, temporal_random_crop)
from avsal.train.engine import fit

sys.path.insert(0, str(Path(__file__).parent))
from stavis_fixtures import make_stavis_root  # noqa: E402


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    torch.set_num_threads(1)
    return make_stavis_root(tmp_path_factory.mktemp("stavis_root"))


def test_loss_terms_have_upstreams_numbers():
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 8, 8)
    sal = torch.sigmoid(logits) * 255  # a density map proportional to the prediction: CC = 1
    assert torch.allclose(cc(logits, sal), torch.ones(2), atol=1e-5)
    manual = F.binary_cross_entropy_with_logits(logits[0].flatten(), sal[0].flatten() / 255, reduction="sum")
    assert torch.allclose(bce_sum(logits, sal)[0], manual)
    fix = torch.zeros(2, 1, 8, 8)
    fix[:, :, 2, 3] = 1
    fix[:, :, 5, 5] = 1
    x = torch.sigmoid(logits).flatten(1)
    z = (x - x.mean(1, keepdim=True)) / x.std(1, unbiased=False, keepdim=True)
    assert torch.allclose(nss(logits, fix), (z[:, 2 * 8 + 3] + z[:, 5 * 8 + 5]) / 2, atol=1e-5)
    # deep-supervision decay: epoch e of E weighs the side outputs by 1 − e/E
    outs = [logits, logits * 0.5, logits * 2]
    total, _ = stavis_loss(outs, sal, fix, epoch=15, epochs=60)
    def term(o):  # noqa: E306
        return 0.1 * bce_sum(o, sal) - 2 * cc(o, sal) - nss(o, fix)
    expected = (0.75 * (term(outs[0]) + term(outs[1])) + term(outs[2])).mean()
    assert torch.allclose(total, expected, atol=1e-4)
    final_only, _ = stavis_loss(outs[-1:], sal, fix, epoch=1, epochs=60)
    assert torch.allclose(final_only, term(outs[2]).mean(), atol=1e-4)


def test_optimiser_groups_follow_upstream():
    for variant, glob, sal, sound, fusion in (("visual", 1e-3, 1e-4, None, None), ("av", 1e-4, 1e-4, 1e-3, 1e-2)):
        net = Stavis(variant=variant, tiny=True)
        lr = {g["name"]: g["lr"] for g in param_groups(net, variant, 0.01, 1e-5)}
        assert len(lr) == len(list(net.parameters()))
        assert lr["conv1.weight"] == pytest.approx(glob) and lr["layer3.0.bn3.bias"] == pytest.approx(glob)
        assert lr["dsam.2.side_prep.weight"] == pytest.approx(sal)
        assert lr["dsam.2.side_prep.bias"] == pytest.approx(2 * sal)
        assert lr["dsam.0.score.weight"] == pytest.approx(sal / 10)   # score_dsn branch: lr_sal / 10
        assert lr["dsam.3.side_upsample.weight"] == pytest.approx(sal / 10)  # the deconvs are trained
        readout = "fuse_av" if variant == "av" else "fuse"
        assert lr[f"{readout}.bias"] == pytest.approx(2 * sal / 10)
        if variant == "av":
            assert lr["soundnet.conv3.weight"] == pytest.approx(sound)
            assert lr["av_fusion.bilinear.weight"] == pytest.approx(fusion)
    opt = StavisTask(variant="av", data=".").optimizer(net, stavis_train_config())
    assert all(g["dampening"] == 0.9 and g["momentum"] == 0.9 and g["weight_decay"] == 1e-5
               and not g["nesterov"] for g in opt.param_groups)


def test_clip_sampling_and_gt_rounding():
    assert gt_frame(range(1, 17)) == 8 and gt_frame(range(2, 18)) == 10  # round(8.5) = 8, round(9.5) = 10
    assert gt_frame(range(1, 17), "half_up") == 9 and gt_frame(range(2, 18), "half_up") == 10
    rng = np.random.default_rng(0)
    starts = {temporal_random_crop(range(1, 91), 16, rng)[0] for _ in range(300)}
    assert min(starts) == 1 and max(starts) == 74  # start in 0 … n − size − 1
    assert temporal_random_crop([5, 6, 7], 8, rng) == [5, 6, 7, 5, 6, 7, 5, 6]  # loop padding


def test_dataset_items_and_the_silent_last_video_switch(root):
    ds = StavisTrainDataset(root, 1)
    assert len(ds) == 3 * 2  # windows j = 1, 75 of each 100-frame video
    clip, audio, sal, fix, epoch, idx = ds[0]
    assert clip.shape == (3, 16, 112, 112) and audio.shape == (1, 1, 35280)
    assert sal.shape == fix.shape == (1, 112, 112) and 200 < sal.max() <= 255 and fix.sum() >= 1
    assert epoch.item() == 1 and idx == 0
    assert torch.equal(ds[3][0], ds[3][0])  # items are functions of (seed, epoch, index)
    visual = StavisTrainDataset(root, 1, audio=False)
    assert visual[0][1].abs().sum() == 0
    assert ds[len(ds) - 1][1].abs().max() > 1  # × 256 waveform
    silent = StavisTrainDataset(root, 1, last_video_silent=True)
    assert silent[len(ds) - 1][1].abs().sum() == 0 and silent[0][1].abs().max() > 1


def _fixed_loss(net, ds, variant):
    net.train()  # batch statistics: a few iterations leave the running statistics far from them
    total = 0.0
    with torch.no_grad():
        for i in range(len(ds)):
            clip, audio, sal, fix, _, _ = ds[i]
            outs = net(clip[None], audio[None] if variant == "av" else None)
            total += float(stavis_loss(outs[-1:], sal[None], fix[None], 1, 60)[0])  # the prediction
    return total / len(ds)


@pytest.mark.parametrize("variant", ["visual", "av"])
def test_training_lowers_the_loss_and_resumes_exactly(root, tmp_path, variant):
    task = lambda: StavisTask(variant=variant, data=root, tiny=True, epochs=3)  # noqa: E731
    cfg = lambda **kw: stavis_train_config(epochs=3, batch_size=2, device="cpu", save_every=0, **kw)  # noqa: E731
    a = tmp_path / "a"
    fit(task(), cfg(), str(a), progress=False)
    ds = StavisTrainDataset(root, 1, audio=variant == "av", hflip=False)
    torch.manual_seed(0)
    before = _fixed_loss(task().build_model(), ds, variant)
    trained = Stavis(variant=variant, tiny=True)
    trained.load_state_dict(load_file(a / "model.safetensors"))
    after = _fixed_loss(trained, ds, variant)
    assert after < 0.8 * before, (before, after)
    b = tmp_path / "b"
    fit(task(), cfg(max_iters=4), str(b), progress=False)  # stopped inside epoch 2
    fit(task(), cfg(), str(b), resume=True, progress=False)
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_cli_trains_av_from_a_visual_run(root, tmp_path, capsys):
    vis = tmp_path / "vis"
    assert main(["train", "stavis", "--variant", "visual", "--data", root, "--split", "1", "--out", str(vis),
                 "--tiny", "--epochs", "1", "--batch-size", "3", "--device", "cpu", "--quiet"]) == 0
    av = tmp_path / "av"
    assert main(["train", "stavis", "--variant", "av", "--data", root, "--split", "1", "--out", str(av),
                 "--tiny", "--epochs", "1", "--batch-size", "3", "--device", "cpu", "--quiet",
                 "--init", str(vis / "model.safetensors")]) == 0
    err = capsys.readouterr().err
    assert "loaded" in err and "stavis-av: 2 iterations" in err
    w_vis, w_av = load_file(vis / "model.safetensors"), load_file(av / "model.safetensors")
    assert "fuse.weight" in w_vis and "fuse_av.weight" in w_av and "soundnet.conv1.weight" in w_av
    assert main(["train", "stavis", "--variant", "av", "--data", root, "--split", "2", "--out",
                 str(tmp_path / "x"), "--tiny", "--quiet"]) == 2  # no train list for split 2


def test_upstream_init_files_load_into_the_full_network(tmp_path):
    """``resnet-50-kinetics.pth`` (Hara et al.: ``arch``, ``module.`` keys, layer4/fc) into the trunk and a bare
    ``soundnet8.pth`` (``module.soundnet8.*``) into SoundNet, the rest untouched; a wrong file is refused."""
    from avsal.errors import InputError
    from avsal.models.stavis.training import load_inits
    from stavis_reference import load_keys

    keys = load_keys()
    trunk = {k: torch.full(s, 0.5) for k, s in keys if k.split(".")[1] in ("conv1", "bn1", "layer1", "layer2", "layer3")}
    trunk["module.layer4.0.conv1.weight"] = torch.zeros(512, 1024, 1, 1, 1)
    trunk["module.fc.weight"] = torch.zeros(400, 2048)
    torch.save({"arch": "resnet-50", "state_dict": trunk}, tmp_path / "resnet-50-kinetics.pth")
    torch.save({k: torch.full(s, 0.25) for k, s in keys if ".soundnet8." in k}, tmp_path / "soundnet8.pth")
    torch.manual_seed(0)
    net = Stavis(variant="av")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    notes = load_inits(net, "av", backbone=str(tmp_path / "resnet-50-kinetics.pth"),
                       audio=str(tmp_path / "soundnet8.pth"))
    assert len(notes) == 2
    sd = net.state_dict()
    assert (sd["layer3.5.conv2.weight"] == 0.5).all() and (sd["bn1.running_var"] == 0.5).all()
    assert (sd["soundnet.conv7.weight"] == 0.25).all() and (sd["soundnet.bn4.running_mean"] == 0.25).all()
    assert torch.equal(sd["av_fusion.bilinear.weight"], before["av_fusion.bilinear.weight"])
    assert torch.equal(sd["dsam.0.side_prep.weight"], before["dsam.0.side_prep.weight"])
    with pytest.raises(InputError, match="only apply to the av variant"):
        load_inits(Stavis(variant="visual", tiny=True), "visual", audio=str(tmp_path / "soundnet8.pth"))
    with pytest.raises(InputError, match="soundnet8.pth"):  # full-size SoundNet into the tiny network
        load_inits(Stavis(variant="av", tiny=True), "av", audio=str(tmp_path / "soundnet8.pth"))
