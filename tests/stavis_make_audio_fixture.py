"""Regenerate ``tests/data/stavis/ref_audio.npz``: upstream STAViS audio excerpts of a synthetic STAViS root.

Usage (outside the test suite; needs a checkout of atsiami/STAViS @ 71fd51f)::

    OMP_NUM_THREADS=1 PYTHONPATH=src python tests/stavis_make_audio_fixture.py /tmp/stavis_upstream

Builds the synthetic roots of ``tests/stavis_fixtures.py`` (3 videos of 100 frames; 16 kHz at 25 fps and
22.05 kHz at 29.97 fps), runs the unmodified upstream ``datasets/saliency_db.saliency_db`` on each (test mode:
``exhaustive_sampling=True``, no spatial/temporal transforms) and stores, for a few clips of the first video
(upstream gives the last video of the list silent audio), the non-zero span of the 35,280-sample excerpt.
Runtime stand-ins (the packages are not installed here): ``torchaudio.load(path, normalization=False)`` returns
the 16-bit wav as int32-scaled samples ``[1, N]`` and its rate, as the legacy sox backend did;
``torchvision.get_image_backend()`` returns ``'PIL'``. No upstream code is copied into this project.
"""

from __future__ import annotations

import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch
from scipy.io import wavfile

sys.path.insert(0, str(Path(__file__).parent))
from stavis_fixtures import make_stavis_root  # noqa: E402

OUT = Path(__file__).resolve().parent / "data" / "stavis" / "ref_audio.npz"
#: (sample rate, fps) of the synthetic roots, and the clip starts stored per video.
CONFIGS = ((16000, 25.0), (22050, 29.97))
CLIP_STARTS = (1, 2, 37, 84, 85, 99)


def _stubs() -> None:
    ta = types.ModuleType("torchaudio")

    def load(path, normalization=True):
        rate, x = wavfile.read(path)
        assert x.dtype == np.int16 and not normalization
        return torch.from_numpy(x.astype(np.int32) * 65536)[None], rate

    ta.load = load
    tv = types.ModuleType("torchvision")
    tv.get_image_backend = lambda: "PIL"
    sys.modules["torchaudio"], sys.modules["torchvision"] = ta, tv


def main(upstream: str) -> None:
    _stubs()
    sys.path.insert(0, upstream)
    from datasets.saliency_db import saliency_db  # upstream, unmodified

    out = {}
    for rate, fps in CONFIGS:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(make_stavis_root(tmp, rate=rate, fps=fps))
            ds = saliency_db(str(root / "video_frames" / "AVAD"), str(root / "fold_lists" / "AVAD_list_train_1_fps.txt"),
                             str(root / "annotations" / "AVAD"), str(root / "video_audio" / "AVAD"),
                             exhaustive_sampling=True)
            for i, sample in enumerate(ds.data):
                j = sample["frame_indices"][0]
                if sample["video_id"] != "vid00" or j not in CLIP_STARTS:
                    continue
                data, _, valid = ds[i]
                a = data["audio"].numpy().reshape(-1)
                nz = np.nonzero(a)[0]
                key = f"{rate}_{sample['video_id']}_{j}"
                out[key + "_first"] = np.int64(nz[0])
                out[key + "_span"] = a[nz[0]:nz[-1] + 1].astype(np.float32)
                out[key + "_valid"] = np.int64(valid["audio"])
                out[key + "_last_frame"] = np.int64(sample["frame_indices"][-1])
                print(key, nz[0], len(nz), valid["audio"], sample["frame_indices"][-1])
    np.savez_compressed(OUT, **out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
