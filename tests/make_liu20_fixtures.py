"""Regenerate ``tests/data/liu20/`` by running the *unmodified* upstream Liu'20 code (run by hand, not by pytest).

Usage::

    python tests/make_liu20_fixtures.py UPSTREAM_DIR [--out tests/data/liu20] [--only network audio gmm pipeline]

``UPSTREAM_DIR`` is an unpacked checkout of MinglangQiao/visual_audio_saliency (``model.py``,
``utils1.py``, ``config.py``; commit 142e642 was used). That repository has no licence: keep it
outside this project; this script only imports it and stores numbers. Needs torch, numpy, opencv,
librosa (0.10 was used) with resampy and soxr, matplotlib (``librosa.display``) and tkinter (imported
by upstream ``utils1.py``).

Patches applied at run time (no upstream line is edited; every one is listed in the README of the
output folder):

1. ``torchvision`` is replaced by an empty stub module (``model.py`` imports it but uses nothing from it;
   torchvision does not install here).
2. ``torch.Tensor.cuda`` returns the tensor unchanged (upstream ``init_hidden`` moves the zero ConvLSTM
   state to the GPU).
3. ``librosa.feature.melspectrogram`` accepts upstream's positional ``(y, sr)`` (librosa ≥ 0.10 made its
   arguments keyword-only) and pads with ``pad_mode="reflect"``, librosa 0.7's default.
4. ``librosa.load`` resamples with ``res_type="kaiser_best"`` (resampy), librosa 0.7's default.

Outputs:

* ``ref_network.npz``: ``logit`` [12,1,16,16], ``lstm`` [12,2,16,16] (ConvLSTM output, channels 0–1),
  ``audio`` [12,2,16,16] (reshaped 3D-CNN features, channels 0–1), ``demo`` [12,16,16] (upstream demo
  post-processing: softmax over axis 1 of the squeezed logits, then ``utils1.process_output`` at the same
  size), for
  ``liu20_reference.make_state_dict()`` and ``make_inputs()``;
* ``ref_audio.npz``: ``logmel`` (0–255, the 22,050 Hz signal), ``frame_images`` [10,64,64]
  (``utils1.load_one_video_audio`` of the 58-frame video, frames ``liu20_reference.IMAGE_FRAMES``),
  ``batch_index`` [4,12,16] (which per-frame image each step of ``utils1.load_one_batch_audio_melspectr``
  holds, found by running it on images filled with their index; batches 0–3 with ``frame_offset=5``),
  ``logmel_44k`` (the 44.1 kHz signal through ``librosa.load``'s kaiser_best resampling);
* ``ref_gmm.npz``: ``maps`` [12,1,32,32] from ``utils1.load_one_batch_gmm`` on ``make_gmm_maps()``;
* ``ref_pipeline.npz``: ``logits`` [24,8,8] and ``frame_index`` [24] (the ``x2`` frame of each map) of upstream's
  demo pipeline (``main.test``: ``load_one_video_frames`` with OpenCV, ``load_one_video_audio``, batches of 12
  from ``load_one_batch_image`` / ``load_one_batch_audio_melspectr`` / ``load_one_batch_gmm``, ``frame_skip``
  5; ``input_dim`` 64 instead of 256) on ``liu20_reference.write_pipeline_video`` (29 frames, 24 fps) and
  ``make_pipeline_gmm()``, with ``make_pipeline_state_dict()``;
* ``params.json``: parameter count, float64 noise floor of the network outputs, versions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import liu20_reference as ref  # noqa: E402


def _stub_torchvision() -> None:
    tv = types.ModuleType("torchvision")
    tv.transforms = types.ModuleType("torchvision.transforms")
    tv.models = types.ModuleType("torchvision.models")
    sys.modules.update({"torchvision": tv, "torchvision.transforms": tv.transforms, "torchvision.models": tv.models})


def _patch_librosa():
    import librosa

    mel, load = librosa.feature.melspectrogram, librosa.load

    def melspectrogram(*args, **kw):
        names = ("y", "sr")
        kw.update({n: a for n, a in zip(names, args)})
        kw.setdefault("pad_mode", "reflect")
        return mel(**kw)

    def load_kaiser(path, **kw):
        kw.setdefault("res_type", "kaiser_best")
        return load(path, **kw)

    librosa.feature.melspectrogram = melspectrogram
    librosa.load = load_kaiser
    return librosa


def network_fixture(model_mod, utils_mod) -> tuple[dict, dict]:
    net = model_mod.visual_audio_face_modal_combine_net()
    keys = [k for k, _ in ref.load_keys()]
    assert list(net.state_dict()) == keys, "upstream state_dict keys differ from keys_liu20.json"
    net.load_state_dict(ref.make_state_dict(), strict=True)
    net.eval()
    inputs = ref.make_inputs()
    grabbed = {}
    hooks = [net.conv_normal_visual1.register_forward_pre_hook(lambda m, a: grabbed.__setitem__("lstm", a[0])),
             net.conv_normal_audio1.register_forward_pre_hook(lambda m, a: grabbed.__setitem__("audio", a[0]))]
    with torch.no_grad():
        logit = net(inputs["x1"], inputs["x2"], inputs["x3"], inputs["x4"])
    for h in hooks:
        h.remove()
    side = logit.shape[-1]
    demo_in = torch.softmax(logit.squeeze(), 1).view(ref.BATCH, side, side).numpy()
    demo = utils_mod.process_output(demo_in, side, side).astype(np.float32)
    # intermediates: the first two channels only (keeps the file small)
    out = {"logit": logit.numpy(), "lstm": grabbed["lstm"][:, :2].numpy(), "audio": grabbed["audio"][:, :2].numpy(),
           "demo": demo}
    # float64 noise floor
    net64 = net.double()
    torch.set_default_dtype(torch.float64)  # upstream's zero ConvLSTM state follows the default dtype
    try:
        with torch.no_grad():
            logit64 = net64(*(inputs[k].double() for k in ("x1", "x2", "x3", "x4")))
    finally:
        torch.set_default_dtype(torch.float32)
    info = {"n_params": sum(p.numel() for p in net.parameters()),
            "float64_max_abs_diff_logit": float((logit64 - logit.double()).abs().max()),
            "logit_range": [float(logit.min()), float(logit.max())]}
    return out, info


def audio_fixture(utils_mod, librosa) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        wav = ref.write_wav(os.path.join(tmp, "a.wav"), ref.make_signal(22050), 22050)
        images = utils_mod.load_one_video_audio(str(wav), ref.VIDEO_FRAMES, ref.VIDEO_FPS, 64)
        images = np.asarray(images, np.float32)
        y, sr = librosa.load(str(wav))
        logmel = librosa.power_to_db(librosa.feature.melspectrogram(y, sr), ref=np.max)
        logmel = logmel - logmel.min()
        logmel = logmel / logmel.max() * 255
        wav44 = ref.write_wav(os.path.join(tmp, "b.wav"), ref.make_signal(44100), 44100)
        y44, _ = librosa.load(str(wav44))
        l44 = librosa.power_to_db(librosa.feature.melspectrogram(y44, 22050), ref=np.max)
        l44 = (l44 - l44.min()) / (l44 - l44.min()).max() * 255
    # which per-frame image each step of a batch holds: run the batch assembly on images tagged j
    tags = [np.full((2, 2), j, np.float64) for j in range(len(images))]
    index = np.zeros((len(ref.AUDIO_BATCHES), ref.BATCH, 16), np.int64)
    for bi, b in enumerate(ref.AUDIO_BATCHES):
        batch = utils_mod.load_one_batch_audio_melspectr(tags, b, ref.BATCH, frame_offset=ref.FRAME_SKIP,
                                                         final_frame=ref.VIDEO_FRAMES)
        index[bi] = np.asarray(batch)[:, 0, :, 0, 0].astype(np.int64)
    return {"logmel": logmel.astype(np.float32), "frame_images": images[list(ref.IMAGE_FRAMES)], "batch_index": index,
            "logmel_44k": l44.astype(np.float32)}


def pipeline_fixture(model_mod, utils_mod) -> dict:
    """Upstream's demo pipeline (``main.test`` steps, with ``input_dim`` ``PIPE_INPUT``) on the synthetic video."""
    net = model_mod.visual_audio_face_modal_combine_net()
    net.load_state_dict(ref.make_pipeline_state_dict(), strict=True)
    net.eval()
    side, skip, bs = ref.PIPE_INPUT, ref.FRAME_SKIP, ref.BATCH
    with tempfile.TemporaryDirectory() as tmp:
        video = ref.write_pipeline_video(os.path.join(tmp, "v.mkv"))
        wav = ref.write_wav(os.path.join(tmp, "v.wav"), ref.make_signal(22050, seconds=ref.PIPE_FRAMES / ref.PIPE_FPS),
                            22050)
        frames, n = utils_mod.load_one_video_frames(str(video))
        gmm = list(ref.make_pipeline_gmm())
        final = int(min(n, len(gmm)))
        audio = utils_mod.load_one_video_audio(str(wav), n, ref.PIPE_FPS, side // 4)
    logits, index = [], []
    with torch.no_grad():
        for b in range(final // bs):
            x1, _ = utils_mod.load_one_batch_image(frames, b, bs, side, frame_offset=0, final_frame=final)
            x2, _ = utils_mod.load_one_batch_image(frames, b, bs, side, frame_offset=skip, final_frame=final)
            if len(np.shape(x2)) == 0:
                continue
            mel = utils_mod.load_one_batch_audio_melspectr(audio, b, bs, final_frame=final, frame_offset=skip)
            face = utils_mod.load_one_batch_gmm(gmm, b, bs, side // 8, frame_offset=skip, final_frame=final)
            logits.append(net(x1, x2, mel.float(), face, b).numpy())
            index.extend(range(skip + b * bs, skip + (b + 1) * bs))
    return {"logits": np.concatenate(logits)[:, 0], "frame_index": np.asarray(index, np.int64)}


def gmm_fixture(utils_mod) -> dict:
    maps = ref.make_gmm_maps()
    out = utils_mod.load_one_batch_gmm(list(maps), 0, ref.BATCH, 32, frame_offset=0, final_frame=ref.BATCH)
    return {"maps": np.asarray(out, np.float32)}


#: The fixture files, by name (``ref_<name>.npz``; ``network`` also writes ``params.json``).
PARTS = ("network", "audio", "gmm", "pipeline")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("upstream", type=Path, help="unpacked MinglangQiao/visual_audio_saliency checkout")
    ap.add_argument("--out", type=Path, default=ref.DATA_DIR)
    ap.add_argument("--only", nargs="+", choices=PARTS, help="regenerate only these files (default: all)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    _stub_torchvision()
    torch.Tensor.cuda = lambda self, *a, **k: self
    librosa = _patch_librosa()
    sys.path.insert(0, str(args.upstream.resolve()))
    import model as model_mod  # upstream
    import utils1 as utils_mod  # upstream

    args.out.mkdir(parents=True, exist_ok=True)
    parts = set(args.only or PARTS)
    if "audio" in parts:
        np.savez_compressed(args.out / "ref_audio.npz", **audio_fixture(utils_mod, librosa))
    if "gmm" in parts:
        np.savez_compressed(args.out / "ref_gmm.npz", **gmm_fixture(utils_mod))
    if "pipeline" in parts:
        np.savez_compressed(args.out / "ref_pipeline.npz", **pipeline_fixture(model_mod, utils_mod))
    if "network" not in parts:
        return
    net_out, info = network_fixture(model_mod, utils_mod)
    np.savez_compressed(args.out / "ref_network.npz", **net_out)
    import cv2
    info.update({"torch": torch.__version__, "numpy": np.__version__, "librosa": librosa.__version__,
                 "opencv": cv2.__version__})
    with open(args.out / "params.json", "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
