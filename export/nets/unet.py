"""U-Net for sea/land segmentation of TimeX images.

Encoder-decoder with skip connections (Ronneberger et al. 2015), as in the published
method. ``depth`` levels of two 3x3 conv-BN-ReLU blocks, 2x2 max-pooling down, bilinear
upsampling (ONNX ``Resize``) and concatenation on the way up, and a 1x1 convolution to
one water logit per pixel (water where the logit > 0). Only Conv, BatchNorm (folded at
export), ReLU, MaxPool, Resize and Concat: ONNX- and INT8-friendly.

Input ``N x 3 x H x W``, RGB, normalised as the manifest says; ``H`` and ``W`` must be
multiples of ``2 ** (depth - 1)``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-Net with ``depth`` levels; level ``k`` has ``width * 2**k`` channels."""

    def __init__(self, in_channels: int = 3, width: int = 12, depth: int = 4) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError("depth must be >= 2")
        chans = [width * 2**k for k in range(depth)]
        self.down = nn.ModuleList()
        c_prev = in_channels
        for c in chans:
            self.down.append(_block(c_prev, c))
            c_prev = c
        self.up = nn.ModuleList(
            _block(chans[k + 1] + chans[k], chans[k]) for k in reversed(range(depth - 1))
        )
        self.head = nn.Conv2d(chans[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for k, block in enumerate(self.down):
            if k:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


def build(width: int = 12, depth: int = 4) -> UNet:
    """The factory named in checkpoints (``export.nets.unet:build``)."""
    return UNet(3, width, depth)
