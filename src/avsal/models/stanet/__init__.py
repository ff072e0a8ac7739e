"""STANet (Wang et al., CVPR 2021): networks, upstream checkpoint conversion, and video inference.

* :mod:`~avsal.models.stanet.networks`: :class:`SNet`, :class:`SANet`, :class:`STNet`, :class:`STANet`;
* :mod:`~avsal.models.stanet.convert`: :func:`convert_upstream_state_dict` (upstream → avsal names);
* :mod:`~avsal.models.stanet.predictor`: :class:`STAVideoModel` (``avsal predict --model stanet-sta``).
"""

from avsal.models.stanet.convert import ConversionReport, convert_upstream_state_dict
from avsal.models.stanet.networks import (AVE_CLASSES, FrameFeatures, SANet, SNet, STANet, STANetConfig,
                                          STNet)

__all__ = ["AVE_CLASSES", "ConversionReport", "FrameFeatures", "SANet", "SNet", "STANet", "STANetConfig",
           "STNet", "convert_upstream_state_dict"]
