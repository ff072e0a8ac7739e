"""Input/output: video decoding (:mod:`avsal.io.video`), audio (:mod:`avsal.io.audio`) and
writing outputs (:mod:`avsal.io.write`)."""

from avsal.io.audio import AudioTrack, load_audio, rms_envelope
from avsal.io.video import Frame, Sampling, VideoInfo, iter_frames, probe, read_frames

__all__ = ["AudioTrack", "Frame", "Sampling", "VideoInfo", "iter_frames", "load_audio", "probe",
           "read_frames", "rms_envelope"]
