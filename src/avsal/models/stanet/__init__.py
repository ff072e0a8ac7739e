"""STANet (Wang et al., CVPR 2021): networks, upstream checkpoint conversion, and inference."""

from avsal.models.stanet.networks import (AVE_CLASSES, FrameFeatures, SANet, SNet, STANet, STANetConfig,
                                          STNet)

__all__ = ["AVE_CLASSES", "FrameFeatures", "SANet", "SNet", "STANet", "STANetConfig", "STNet"]
