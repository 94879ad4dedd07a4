"""The cavity/pipe detector network: a compact CenterNet-style anchor-free detector.

Input ``N x 1 x H x W``: a processed B-scan window (rows = two-way time, columns = traces)
resampled to the model size and standardised per window
(:func:`edge.gpr.detector.normalise_window`). Output ``maps`` ``N x (C + 4) x H/4 x W/4``,
all sigmoid-activated, the layout :func:`edge.gpr.detector.decode` reads: C class heat maps
(probability that a box centre falls in the cell), then the centre offset inside the cell
(x, y in cells, 0..1) and the box size (width, height as fractions of the window).

Backbone: strided 3x3 convolutions with residual blocks down to stride 32 (hyperbola tails
span most of a window, so the deep features see all of it), a top-down feature pyramid
(nearest upsampling + 1x1 lateral convolutions, added) back to stride 4, and a small head.
Only Conv, BatchNorm (folded at export), ReLU, Add, Resize and Sigmoid: ONNX- and INT8-friendly.
"""

from __future__ import annotations

import torch
from torch import nn

#: Cells of the output maps per input pixel, inverted (input pixels per cell).
STRIDE = 4


def conv_bn(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """3x3 convolution, batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class Residual(nn.Module):
    """Two 3x3 convolutions (the second dilated) with an identity shortcut."""

    def __init__(self, c: int, dilation: int = 1) -> None:
        super().__init__()
        self.a = conv_bn(c, c)
        self.b = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(c),
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.b(self.a(x)))


class CavityNet(nn.Module):
    """CenterNet-style detector; ``width`` scales the channel counts, ``classes`` the heads."""

    def __init__(self, classes: int = 2, width: int = 16) -> None:
        super().__init__()
        w = width
        self.classes = classes
        self.stem = nn.Sequential(conv_bn(1, w, 2), conv_bn(w, w))  # /2
        self.s4 = nn.Sequential(conv_bn(w, 2 * w, 2), Residual(2 * w))  # /4
        self.s8 = nn.Sequential(conv_bn(2 * w, 3 * w, 2), Residual(3 * w, 2))  # /8
        self.s16 = nn.Sequential(conv_bn(3 * w, 4 * w, 2), Residual(4 * w, 2))  # /16
        self.s32 = nn.Sequential(conv_bn(4 * w, 6 * w, 2), Residual(6 * w, 2))  # /32
        f = 3 * w
        self.lat32 = nn.Conv2d(6 * w, f, 1)
        self.lat16 = nn.Conv2d(4 * w, f, 1)
        self.lat8 = nn.Conv2d(3 * w, f, 1)
        self.lat4 = nn.Conv2d(2 * w, f, 1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.smooth = conv_bn(f, f)
        head_in = conv_bn(f, f)
        out = nn.Conv2d(f, classes + 4, 1)
        self.head = nn.Sequential(head_in, out)
        # Heat-map bias so the initial centre probability is ~0.01 (CenterNet focal-loss prior).
        if out.bias is None:  # a Conv2d has a bias unless built with bias=False
            raise ValueError("detector head convolution has no bias")
        nn.init.constant_(out.bias[:classes], -4.6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c4 = self.s4(self.stem(x))
        c8 = self.s8(c4)
        c16 = self.s16(c8)
        c32 = self.s32(c16)
        p = self.lat32(c32)
        p = self.up(p) + self.lat16(c16)
        p = self.up(p) + self.lat8(c8)
        p = self.up(p) + self.lat4(c4)
        return torch.sigmoid(self.head(self.smooth(p)))


def build(classes: int = 2, width: int = 16) -> CavityNet:
    """The detector network (``arch`` of checkpoints: ``export.nets.detector:build``)."""
    return CavityNet(classes, width)
