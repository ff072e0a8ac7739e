"""Backbones written here with torchvision's parameter names, so public checkpoints load unchanged.

* :class:`ResNeXt` — ResNet/ResNeXt with Bottleneck blocks (He et al. 2016; Xie et al. 2017).
  :func:`resnext101_32x8d` has exactly the layout of ``torchvision.models.resnext101_32x8d`` and of the
  WSL-Images ``resnext101_32x8d_wsl`` hub model (Mahajan et al. 2018), which STANet uses; their
  ``state_dict`` keys (``conv1``, ``bn1``, ``layer1.0.conv1``, ..., ``fc``) load as they are.
  :meth:`ResNeXt.features` returns the layer2/layer3/layer4 maps (strides 8/16/32).
* :class:`AudioResNet` — the VGGSound audio network (Chen et al., ICASSP 2020): ResNet-18 with a
  1-channel stem and NetVLAD pooling (Arandjelović et al. 2016), 16 clusters × 512 → 8192-d, keys as in
  the ``audnet`` of ``vggsound_netvlad.pth.tar`` (``conv1``, ``bn1``, ``layer1``..``layer4``,
  ``avgpool.conv``, ``avgpool.centroids``, ``fc_``).

``tiny=True`` variants keep the topology (block types, strides, groups) with few channels and one block
per stage, for fast tests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv3x3(cin: int, cout: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, groups=groups, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class Bottleneck(nn.Module):
    """ResNeXt bottleneck: 1×1 → grouped 3×3 (stride here, as torchvision v1.5) → 1×1 (×4), residual."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 groups: int = 1, width_per_group: int = 64):
        super().__init__()
        width = int(planes * (width_per_group / 64.0)) * groups
        self.conv1 = _conv1x1(cin, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = _conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3×3 convolutions, residual."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def _kaiming_init(module: nn.Module, bn_std: float) -> None:
    """torchvision's ResNet initialisation: Kaiming-normal fan-out convolutions; BatchNorm weight 1 (or
    N(1, bn_std) as the VGGSound code does), bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, bn_std) if bn_std > 0 else nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _make_stage(block, cin: int, planes: int, blocks: int, stride: int, **kw) -> tuple[nn.Sequential, int]:
    downsample = None
    cout = planes * block.expansion
    if stride != 1 or cin != cout:
        downsample = nn.Sequential(_conv1x1(cin, cout, stride), nn.BatchNorm2d(cout))
    layers = [block(cin, planes, stride, downsample, **kw)]
    layers += [block(cout, planes, **kw) for _ in range(1, blocks)]
    return nn.Sequential(*layers), cout


class ResNeXt(nn.Module):
    """ResNet/ResNeXt with Bottleneck blocks, torchvision module names.

    Args:
        layers: blocks per stage, e.g. ``(3, 4, 23, 3)`` for the 101-layer network.
        groups, width_per_group: ResNeXt cardinality and bottleneck width (32, 8 for 32x8d).
        base: channels of the stem and of the first stage's ``planes`` (64 in torchvision).
        num_classes: size of ``fc`` (1000 for ImageNet checkpoints); ``0`` builds no ``fc``.
        stages: how many of layer1..layer4 to build (STANet's S stops at layer3); ``fc`` needs 4.

    Attributes:
        channels: output channels of layer1..layer4 (e.g. 256, 512, 1024, 2048).
    """

    def __init__(self, layers=(3, 4, 23, 3), groups: int = 32, width_per_group: int = 8, base: int = 64,
                 num_classes: int = 1000, stages: int = 4):
        super().__init__()
        if not 2 <= stages <= 4:
            raise ValueError(f"stages must be 2, 3 or 4, got {stages}")
        kw = dict(groups=groups, width_per_group=width_per_group)
        self.conv1 = nn.Conv2d(3, base, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        c = base
        chans = []
        for i, (n, stride) in enumerate(zip(layers[:stages], (1, 2, 2, 2))):
            stage, c = _make_stage(Bottleneck, c, base * 2 ** i, n, stride, **kw)
            setattr(self, f"layer{i + 1}", stage)
            chans.append(c)
        self.channels = tuple(chans)
        self.stages = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(c, num_classes) if num_classes and stages == 4 else None
        _kaiming_init(self, bn_std=0.0)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` → ``[B, base, H/4, W/4]`` (conv1, bn1, relu, maxpool)."""
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def features(self, x: torch.Tensor, upto: int = 4) -> list[torch.Tensor]:
        """Feature maps of layer2 … layer``upto``.

        Args:
            x: float ``[B, 3, H, W]``, ImageNet-normalised RGB.
            upto: last stage to run (2, 3 or 4; at most ``stages``).

        Returns:
            ``[layer2 [B, C2, H/8, W/8], layer3 [B, C3, H/16, W/16], layer4 [B, C4, H/32, W/32]]``
            truncated after stage ``upto`` (sizes rounded up, e.g. 356 → 45, 23, 12).
        """
        x = self.layer1(self.stem(x))
        out = []
        for i in range(2, upto + 1):
            x = getattr(self, f"layer{i}")(x)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classification logits ``[B, num_classes]`` (or pooled features if built without ``fc``)."""
        x = self.avgpool(self.features(x, self.stages)[-1]).flatten(1)
        return self.fc(x) if self.fc is not None else x


def resnext101_32x8d(tiny: bool = False, num_classes: int = 1000, stages: int = 4) -> ResNeXt:
    """ResNeXt-101 32x8d (torchvision / WSL layout; 88.8M parameters with ``fc``).

    ``tiny=True``: one block per stage, cardinality 2, width 16 per group, 8-channel stem (channels
    32/64/128/256).
    """
    if tiny:
        return ResNeXt(layers=(1, 1, 1, 1), groups=2, width_per_group=16, base=8, num_classes=num_classes,
                       stages=stages)
    return ResNeXt(layers=(3, 4, 23, 3), groups=32, width_per_group=8, base=64, num_classes=num_classes,
                   stages=stages)


class NetVLAD(nn.Module):
    """NetVLAD pooling (Arandjelović et al., CVPR 2016), as in the VGGSound audio network.

    Descriptors are L2-normalised over channels; soft assignment ``softmax_k(conv1x1(x))``; residuals to
    the centroids weighted by the assignment and summed over positions; intra-normalisation per cluster;
    then flattened and L2-normalised.

    Args:
        num_clusters: K (16).
        dim: descriptor channels D (512).
        alpha: initial assignment sharpness (100); sets the initial ``conv`` from the centroids.

    Shapes: ``[B, D, H, W]`` → ``[B, K·D]``.
    """

    def __init__(self, num_clusters: int = 16, dim: int = 512, alpha: float = 100.0):
        super().__init__()
        self.num_clusters, self.dim, self.alpha = num_clusters, dim, alpha
        self.conv = nn.Conv2d(dim, num_clusters, 1, bias=True)
        self.centroids = nn.Parameter(torch.rand(num_clusters, dim))
        with torch.no_grad():
            self.conv.weight.copy_((2.0 * alpha * self.centroids)[:, :, None, None])
            self.conv.bias.copy_(-alpha * self.centroids.norm(dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, d = x.shape[:2]
        x = F.normalize(x, p=2, dim=1)
        assign = F.softmax(self.conv(x).flatten(2), dim=1)  # [B, K, N]
        xf = x.flatten(2)  # [B, D, N]
        # Σ_n a_kn (x_n − c_k) = (A Xᵀ)_k − (Σ_n a_kn) c_k
        vlad = torch.bmm(assign, xf.transpose(1, 2)) - assign.sum(-1, keepdim=True) * self.centroids[None]
        vlad = F.normalize(vlad, p=2, dim=2)
        return F.normalize(vlad.reshape(b, -1), p=2, dim=1)


class AudioResNet(nn.Module):
    """VGGSound audio network: ResNet-18 (1-channel stem) + NetVLAD → 8192-d embedding.

    Args:
        tiny: few channels (4/8/16/32), one block per stage, 4 clusters, for tests.
        num_classes: size of the classifier ``fc_`` (309 VGGSound classes); ``0`` builds none.

    Input: ``[B, 1, F, T]`` log-spectrogram (e.g. 81 × 199 per second, see
    :func:`avsal.io.audio.stft_features`). :meth:`embed` returns ``[B, K·512]`` (8192 at full size).
    """

    def __init__(self, tiny: bool = False, num_classes: int = 309):
        super().__init__()
        base = 4 if tiny else 64
        blocks = (1, 1, 1, 1) if tiny else (2, 2, 2, 2)
        self.conv1 = nn.Conv2d(1, base, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        c = base
        for i, n in enumerate(blocks):
            stage, c = _make_stage(BasicBlock, c, base * 2 ** i, n, 1 if i == 0 else 2)
            setattr(self, f"layer{i + 1}", stage)
        k = 4 if tiny else 16
        self.avgpool = NetVLAD(num_clusters=k, dim=c)  # upstream's attribute name for the pooling
        self.out_dim = k * c
        self.fc_ = nn.Linear(self.out_dim, num_classes) if num_classes else None
        _kaiming_init(self, bn_std=0.02)  # upstream also re-initialises the NetVLAD conv here

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, F, T]`` → NetVLAD embedding ``[B, out_dim]`` (unit L2 norm)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``[B, num_classes]`` (or the embedding if built without ``fc_``)."""
        e = self.embed(x)
        return self.fc_(e) if self.fc_ is not None else e
