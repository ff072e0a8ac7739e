"""Paper-exact evaluation: the STAViS protocol around the cvzoya saliency metrics.

The metric functions themselves live in :mod:`avsal.metrics`; this package holds what the
protocol adds around them, starting with MATLAB's bicubic :func:`imresize`.
"""

from avsal.evaluate.resize import imresize

__all__ = ["imresize"]
