"""The metric feature extractors of `copgen metrics` and `copgen eval`: the FID
Inception-v3 (pool3) and VGG16 (fc2 after ReLU).

Each takes uint8 images [N, 3, H, W] and does the TF1-compatible resize
(tf1_resize_bilinear) and the normalisation inside (shared/reference/metrics.md), so C++
only feeds pixels. Also their random init (_init_random) and the width divisor of the
tiny test versions.
"""

from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

INCEPTION_SIZE = 299
VGG_SIZE = 224
INCEPTION_CLASSES = 1008  # the TF graph's 1008-way logits, kept for strict key matching
VGG_CLASSES = 1000
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TINY_EXTRACTOR_DIVISOR = 16  # --tiny-extractors: every channel count divided by this


def _tf1_axis(in_size: int, out_size: int, device: torch.device) -> Tuple[Tensor, Tensor, Tensor]:
    """Source indices and weights of one axis of TF1's legacy resize_bilinear.

    scale = float32(in) / float32(out); output pixel o samples s = o * scale (float32),
    between floor(s) and min(floor(s) + 1, in - 1), with weight s - floor(s) on the latter.
    """
    scale = torch.tensor(float(in_size), dtype=torch.float32) / torch.tensor(
        float(out_size), dtype=torch.float32)
    src = torch.arange(out_size, dtype=torch.float32, device=device) * scale.to(device)
    lo_f = torch.floor(src)
    lo = lo_f.to(torch.long)
    hi = torch.clamp(lo + 1, max=in_size - 1)
    return lo, hi, src - lo_f


def tf1_resize_bilinear(x: Tensor, out_h: int, out_w: int) -> Tensor:
    """TensorFlow 1 `resize_bilinear` (align_corners=False, no half-pixel centres) of
    x [N, C, H, W], computed in float32 in TF's order:
    top = tl + (tr - tl) * wx, bottom = bl + (br - bl) * wx, out = top + (bottom - top) * wy."""
    x = x.to(torch.float32)
    in_h = x.shape[2]
    in_w = x.shape[3]
    y_lo, y_hi, wy = _tf1_axis(in_h, out_h, x.device)
    x_lo, x_hi, wx = _tf1_axis(in_w, out_w, x.device)
    top = x.index_select(2, y_lo)
    bottom = x.index_select(2, y_hi)
    wx = wx.view(1, 1, 1, out_w)
    wy = wy.view(1, 1, out_h, 1)
    tl = top.index_select(3, x_lo)
    tr = top.index_select(3, x_hi)
    bl = bottom.index_select(3, x_lo)
    br = bottom.index_select(3, x_hi)
    t = tl + (tr - tl) * wx
    b = bl + (br - bl) * wx
    return t + (b - t) * wy


def _check_images(x: Tensor, what: str) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise RuntimeError(what + ": images must be [N, 3, H, W], got " + str(x.shape))
    if x.dtype != torch.uint8:
        raise RuntimeError(what + ": images must be uint8, got " + str(x.dtype))
    if x.shape[0] < 1 or x.shape[2] < 1 or x.shape[3] < 1:
        raise RuntimeError(what + ": empty image batch " + str(x.shape))


def _ch(n: int, divisor: int) -> int:
    return max(1, n // divisor)


def _init_random(module: nn.Module) -> None:
    """Random weights that keep activations O(1) through a deep ReLU net (He normal),
    and batch-norm statistics that are not the identity, so that tests exercise them."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.normal_(m.bias, std=0.01)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, std=0.1)
            with torch.no_grad():
                m.running_mean.normal_(std=0.1)
                m.running_var.uniform_(0.5, 1.5)


class BasicConv2d(nn.Module):
    """conv (no bias) -> batch norm (eps 0.001) -> ReLU, torchvision's Inception names."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size, stride=1, padding=0, device=None):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding,
                              bias=False, device=device)
        self.bn = nn.BatchNorm2d(out_ch, eps=0.001, device=device)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


class FIDInceptionA(nn.Module):
    """Mixed_5b/c/d. The pool branch averages without the zero padding (the TF graph)."""

    def __init__(self, in_ch: int, pool_features: int, d: int, device=None):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_ch, _ch(64, d), 1, device=device)
        self.branch5x5_1 = BasicConv2d(in_ch, _ch(48, d), 1, device=device)
        self.branch5x5_2 = BasicConv2d(_ch(48, d), _ch(64, d), 5, padding=2, device=device)
        self.branch3x3dbl_1 = BasicConv2d(in_ch, _ch(64, d), 1, device=device)
        self.branch3x3dbl_2 = BasicConv2d(_ch(64, d), _ch(96, d), 3, padding=1, device=device)
        self.branch3x3dbl_3 = BasicConv2d(_ch(96, d), _ch(96, d), 3, padding=1, device=device)
        self.branch_pool = BasicConv2d(in_ch, _ch(pool_features, d), 1, device=device)
        self.out_channels = 2 * _ch(64, d) + _ch(96, d) + _ch(pool_features, d)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    """Mixed_6a: grid reduction 35 -> 17."""

    def __init__(self, in_ch: int, d: int, device=None):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_ch, _ch(384, d), 3, stride=2, device=device)
        self.branch3x3dbl_1 = BasicConv2d(in_ch, _ch(64, d), 1, device=device)
        self.branch3x3dbl_2 = BasicConv2d(_ch(64, d), _ch(96, d), 3, padding=1, device=device)
        self.branch3x3dbl_3 = BasicConv2d(_ch(96, d), _ch(96, d), 3, stride=2, device=device)
        self.out_channels = _ch(384, d) + _ch(96, d) + in_ch

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, 3, stride=2)
        return torch.cat([b3, bd, bp], 1)


class FIDInceptionC(nn.Module):
    """Mixed_6b..e: factorised 7x7; the pool branch averages without the padding."""

    def __init__(self, in_ch: int, channels_7x7: int, d: int, device=None):
        super().__init__()
        c7 = _ch(channels_7x7, d)
        c192 = _ch(192, d)
        self.branch1x1 = BasicConv2d(in_ch, c192, 1, device=device)
        self.branch7x7_1 = BasicConv2d(in_ch, c7, 1, device=device)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3), device=device)
        self.branch7x7_3 = BasicConv2d(c7, c192, (7, 1), padding=(3, 0), device=device)
        self.branch7x7dbl_1 = BasicConv2d(in_ch, c7, 1, device=device)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0), device=device)
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3), device=device)
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0), device=device)
        self.branch7x7dbl_5 = BasicConv2d(c7, c192, (1, 7), padding=(0, 3), device=device)
        self.branch_pool = BasicConv2d(in_ch, c192, 1, device=device)
        self.out_channels = 4 * c192

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        bd = self.branch7x7dbl_3(self.branch7x7dbl_2(bd))
        bd = self.branch7x7dbl_5(self.branch7x7dbl_4(bd))
        bp = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    """Mixed_7a: grid reduction 17 -> 8."""

    def __init__(self, in_ch: int, d: int, device=None):
        super().__init__()
        c192 = _ch(192, d)
        self.branch3x3_1 = BasicConv2d(in_ch, c192, 1, device=device)
        self.branch3x3_2 = BasicConv2d(c192, _ch(320, d), 3, stride=2, device=device)
        self.branch7x7x3_1 = BasicConv2d(in_ch, c192, 1, device=device)
        self.branch7x7x3_2 = BasicConv2d(c192, c192, (1, 7), padding=(0, 3), device=device)
        self.branch7x7x3_3 = BasicConv2d(c192, c192, (7, 1), padding=(3, 0), device=device)
        self.branch7x7x3_4 = BasicConv2d(c192, c192, 3, stride=2, device=device)
        self.out_channels = _ch(320, d) + c192 + in_ch

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        bp = F.max_pool2d(x, 3, stride=2)
        return torch.cat([b3, b7, bp], 1)


class FIDInceptionE(nn.Module):
    """Mixed_7b (E_1: average pool without the padding) and Mixed_7c (E_2: max pool), as in
    the TF graph the FID weights come from."""

    def __init__(self, in_ch: int, max_pool: bool, d: int, device=None):
        super().__init__()
        c384 = _ch(384, d)
        self.branch1x1 = BasicConv2d(in_ch, _ch(320, d), 1, device=device)
        self.branch3x3_1 = BasicConv2d(in_ch, c384, 1, device=device)
        self.branch3x3_2a = BasicConv2d(c384, c384, (1, 3), padding=(0, 1), device=device)
        self.branch3x3_2b = BasicConv2d(c384, c384, (3, 1), padding=(1, 0), device=device)
        self.branch3x3dbl_1 = BasicConv2d(in_ch, _ch(448, d), 1, device=device)
        self.branch3x3dbl_2 = BasicConv2d(_ch(448, d), c384, 3, padding=1, device=device)
        self.branch3x3dbl_3a = BasicConv2d(c384, c384, (1, 3), padding=(0, 1), device=device)
        self.branch3x3dbl_3b = BasicConv2d(c384, c384, (3, 1), padding=(1, 0), device=device)
        self.branch_pool = BasicConv2d(in_ch, _ch(192, d), 1, device=device)
        self.max_pool: bool = max_pool
        self.out_channels = _ch(320, d) + 4 * c384 + _ch(192, d)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        if self.max_pool:
            pooled = F.max_pool2d(x, 3, stride=1, padding=1)
        else:
            pooled = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        bp = self.branch_pool(pooled)
        return torch.cat([b1, b3, bd, bp], 1)


class FIDInceptionV3(nn.Module):
    """The TensorFlow FID Inception-v3 (`pt_inception-2015-12-05`), pool3 features.

    forward(x: uint8 [N, 3, H, W]) -> float32 [N, feature_dim] (2048 at full size):
    TF1 bilinear resize to 299 x 299 in float32, (x - 128) / 128, the network up to the
    global average pool. `fc` (1008 classes) is kept only so the weights load strictly.
    width_divisor > 1 divides every channel count (tiny test versions).
    """

    def __init__(self, width_divisor: int = 1, device=None):
        super().__init__()
        d = width_divisor
        self.Conv2d_1a_3x3 = BasicConv2d(3, _ch(32, d), 3, stride=2, device=device)
        self.Conv2d_2a_3x3 = BasicConv2d(_ch(32, d), _ch(32, d), 3, device=device)
        self.Conv2d_2b_3x3 = BasicConv2d(_ch(32, d), _ch(64, d), 3, padding=1, device=device)
        self.Conv2d_3b_1x1 = BasicConv2d(_ch(64, d), _ch(80, d), 1, device=device)
        self.Conv2d_4a_3x3 = BasicConv2d(_ch(80, d), _ch(192, d), 3, device=device)
        self.Mixed_5b = FIDInceptionA(_ch(192, d), 32, d, device)
        self.Mixed_5c = FIDInceptionA(self.Mixed_5b.out_channels, 64, d, device)
        self.Mixed_5d = FIDInceptionA(self.Mixed_5c.out_channels, 64, d, device)
        self.Mixed_6a = InceptionB(self.Mixed_5d.out_channels, d, device)
        self.Mixed_6b = FIDInceptionC(self.Mixed_6a.out_channels, 128, d, device)
        self.Mixed_6c = FIDInceptionC(self.Mixed_6b.out_channels, 160, d, device)
        self.Mixed_6d = FIDInceptionC(self.Mixed_6c.out_channels, 160, d, device)
        self.Mixed_6e = FIDInceptionC(self.Mixed_6d.out_channels, 192, d, device)
        self.Mixed_7a = InceptionD(self.Mixed_6e.out_channels, d, device)
        self.Mixed_7b = FIDInceptionE(self.Mixed_7a.out_channels, False, d, device)
        self.Mixed_7c = FIDInceptionE(self.Mixed_7b.out_channels, True, d, device)
        dim = self.Mixed_7c.out_channels
        self.fc = nn.Linear(dim, INCEPTION_CLASSES, device=device)
        # Attributes readable from C++ with module.attr(name).
        self.name: str = "inception-v3-fid"
        self.feature: str = "pool3"
        self.feature_dim: int = dim
        self.input_size: int = INCEPTION_SIZE
        self.width_divisor: int = width_divisor
        self.normalization: str = "(x - 128) / 128"

    @torch.jit.export
    def resize(self, x: Tensor, height: int, width: int) -> Tensor:
        """The TF1-compatible bilinear resize alone: any [N, C, H, W] -> float32."""
        return tf1_resize_bilinear(x, height, width)

    @torch.jit.export
    def preprocess(self, x: Tensor) -> Tensor:
        """uint8 [N, 3, H, W] -> the network's float32 input [N, 3, 299, 299]."""
        _check_images(x, "inception")
        x = tf1_resize_bilinear(x, self.input_size, self.input_size)
        return (x - 128.0) / 128.0

    @torch.jit.export
    def features_of(self, x: Tensor) -> Tensor:
        """The network on a preprocessed float32 input -> [N, feature_dim]."""
        x = self.Conv2d_1a_3x3(x.to(self.fc.weight.dtype))
        x = self.Conv2d_2a_3x3(x)
        x = self.Conv2d_2b_3x3(x)
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_3b_1x1(x)
        x = self.Conv2d_4a_3x3(x)
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Mixed_5b(x)
        x = self.Mixed_5c(x)
        x = self.Mixed_5d(x)
        x = self.Mixed_6a(x)
        x = self.Mixed_6b(x)
        x = self.Mixed_6c(x)
        x = self.Mixed_6d(x)
        x = self.Mixed_6e(x)
        x = self.Mixed_7a(x)
        x = self.Mixed_7b(x)
        x = self.Mixed_7c(x)
        return F.adaptive_avg_pool2d(x, (1, 1)).flatten(1).to(torch.float32)

    def forward(self, x: Tensor) -> Tensor:
        return self.features_of(self.preprocess(x))


VGG16_CFG = [64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0]  # 0: max pool


class VGG16Features(nn.Module):
    """torchvision's VGG16 (`vgg16-397923af.pth`), features after fc2's ReLU.

    forward(x: uint8 [N, 3, H, W]) -> float32 [N, feature_dim] (4096 at full size):
    TF1 bilinear resize to 224 x 224 in float32, / 255, ImageNet mean/std, then
    features -> adaptive 7 x 7 average pool -> classifier.0 -> ReLU -> classifier.3 ->
    ReLU. classifier.6 (1000 classes) is kept only so the weights load strictly.
    """

    def __init__(self, width_divisor: int = 1, device=None):
        super().__init__()
        d = width_divisor
        layers: List[nn.Module] = []
        in_ch = 3
        for v in VGG16_CFG:
            if v == 0:
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers.append(nn.Conv2d(in_ch, _ch(v, d), 3, padding=1, device=device))
                layers.append(nn.ReLU(inplace=False))
                in_ch = _ch(v, d)
        self.features = nn.Sequential(*layers)
        hidden = _ch(4096, d)
        self.classifier = nn.Sequential(
            nn.Linear(in_ch * 7 * 7, hidden, device=device), nn.ReLU(inplace=False), nn.Dropout(),
            nn.Linear(hidden, hidden, device=device), nn.ReLU(inplace=False), nn.Dropout(),
            nn.Linear(hidden, VGG_CLASSES, device=device))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1),
                             persistent=False)
        self.name: str = "vgg16-fc2-relu"
        self.feature: str = "fc2_relu"
        self.feature_dim: int = hidden
        self.input_size: int = VGG_SIZE
        self.width_divisor: int = width_divisor
        self.normalization: str = "(x / 255 - mean) / std, ImageNet mean and std"

    @torch.jit.export
    def resize(self, x: Tensor, height: int, width: int) -> Tensor:
        """The TF1-compatible bilinear resize alone: any [N, C, H, W] -> float32."""
        return tf1_resize_bilinear(x, height, width)

    @torch.jit.export
    def preprocess(self, x: Tensor) -> Tensor:
        """uint8 [N, 3, H, W] -> the network's float32 input [N, 3, 224, 224]."""
        _check_images(x, "vgg16")
        x = tf1_resize_bilinear(x, self.input_size, self.input_size)
        return (x / 255.0 - self.mean) / self.std

    @torch.jit.export
    def features_of(self, x: Tensor) -> Tensor:
        """The network on a preprocessed float32 input -> [N, feature_dim]."""
        x = self.features(x.to(self.classifier[0].weight.dtype))
        x = F.adaptive_avg_pool2d(x, (7, 7)).flatten(1)
        for i, layer in enumerate(self.classifier):
            if i < 5:  # up to fc2's ReLU; the dropouts are identities in eval mode
                x = layer(x)
        return x.to(torch.float32)

    def forward(self, x: Tensor) -> Tensor:
        return self.features_of(self.preprocess(x))
