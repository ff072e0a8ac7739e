"""Models: the registry (:func:`create_model`) and the shared inference pieces.

Each family registers its own names when imported (``classic``, ``stanet/``, …; see
:mod:`avsal.models.registry` and ``docs/models.md``); this package holds only the lookup. A *video model*
(what ``avsal predict`` runs) follows the contract of :mod:`avsal.models.base`;
:func:`create_video_model` builds one. Network models are ``torch.nn.Module``\\ s from :func:`create_model`,
with or without weights (for training).
"""

from __future__ import annotations

from avsal.models.base import Prediction, upsample
from avsal.models.registry import (ModelEntry, create_model, create_video_model, get_entry, list_models,
                                   register_model)

__all__ = ["ModelEntry", "Prediction", "create_model", "create_video_model", "get_entry", "list_models",
           "register_model", "upsample"]
