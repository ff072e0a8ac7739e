"""avsal: audio-visual video saliency prediction.

Top-level entry points (imported lazily so that ``import avsal`` stays cheap):

* :func:`avsal.predict_video` — saliency maps for one video file.
* :func:`avsal.models.create_model` — build a model from the registry by name.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "predict_video"]


def __getattr__(name):  # PEP 562 lazy attribute
    if name == "predict_video":
        from avsal.predict import predict_video

        return predict_video
    raise AttributeError(f"module 'avsal' has no attribute {name!r}")
