"""Training losses of STANet (upstream ``train.py`` files and ``STANet_train&test/loss.py``)."""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

#: Numerical guard of upstream's KLD (``STANet_train&test/loss.py``): ``sys.float_info.epsilon`` = 2.22e-16.
#: A pixel of normalised GT mass g predicted 0 costs ``g · log(eps + g / eps)`` ≈ ``g · (log g + 36.0)``,
#: against ``g · (log g + 16.1)`` with a 1e-7 guard; pass ``eps=1e-7`` (STA ``kld_eps``) for the softer loss.
KLD_EPS = sys.float_info.epsilon


def multilabel_soft_margin(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``F.multilabel_soft_margin_loss`` on one-hot targets (upstream's classification loss).

    Shapes: ``logits [B, K]``, ``target [B, K]`` in {0, 1} → scalar.
    """
    return F.multilabel_soft_margin_loss(logits, target)


def kld(pred: torch.Tensor, gt: torch.Tensor, normalise: str = "sample", eps: float = KLD_EPS) -> torch.Tensor:
    """KL divergence of the predicted saliency from the (pseudo) ground truth: ``Σ g · log(eps + g / (p + eps))``.

    Args:
        pred: ``[B, 1, H, W]`` saliency in [0, 1] (``σ(logits)``).
        gt: ``[B, 1, H, W]`` in [0, 1].
        normalise: ``"sample"`` (default): each map divided by its own sum, loss averaged over the batch;
            ``"batch"``: upstream's ``loss.py``, which divides by the sum over the **whole batch tensor**
            (so samples with more mass weigh more) and sums.
        eps: the guard inside the log and the division (default upstream's ``sys.float_info.epsilon``).

    Returns:
        Scalar tensor.

    Raises:
        ValueError: unknown ``normalise``.
    """
    if normalise == "batch":
        p = pred / pred.sum()
        g = gt / gt.sum()
        return (g * torch.log(eps + g / (p + eps))).sum()
    if normalise == "sample":
        p = pred / pred.flatten(1).sum(1).clamp_min(eps).view(-1, 1, 1, 1)
        g = gt / gt.flatten(1).sum(1).clamp_min(eps).view(-1, 1, 1, 1)
        return (g * torch.log(eps + g / (p + eps))).flatten(1).sum(1).mean()
    raise ValueError(f"normalise must be 'sample' or 'batch', got {normalise!r}")


def saliency_loss(logits: torch.Tensor, gt: torch.Tensor, kld_normalise: str = "sample",
                  kld_eps: float = KLD_EPS) -> torch.Tensor:
    """STA loss of one output map: ``BCEWithLogits(logits, gt) + KLD(σ(logits), gt)``.

    Shapes: ``logits, gt [B, 1, H, W]`` (gt in [0, 1]) → scalar. ``kld_eps``: see :func:`kld`.
    """
    return (F.binary_cross_entropy_with_logits(logits, gt)
            + kld(torch.sigmoid(logits), gt, kld_normalise, kld_eps))
