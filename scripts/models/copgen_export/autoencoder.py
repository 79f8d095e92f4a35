"""The autoencoder: LDM / Stable Diffusion v1 KL-f8, with CompVis parameter names, so the
published checkpoint (autoencoder_kl_ema.pth) loads with strict=True.

ResnetBlock, AttnBlock, Downsample, Upsample, MidBlock, EncoderLevel, DecoderLevel,
Encoder, Decoder and Autoencoder (TorchScript methods encode_moments, decode, forward).
"""

from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .common import IMAGE_CHANNELS, SCALE_FACTOR


def _group_norm(channels: int, device=None) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6, affine=True, device=device)


class ResnetBlock(nn.Module):
    """norm1 -> swish -> conv1 -> norm2 -> swish -> conv2, plus a (1x1) shortcut."""

    def __init__(self, in_ch: int, out_ch: int, device=None):
        super().__init__()
        self.norm1 = _group_norm(in_ch, device)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1, device=device)
        self.norm2 = _group_norm(out_ch, device)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, device=device)
        # Identity has no parameters, so the state dict only has nin_shortcut where the
        # channel count changes, as in the checkpoint.
        if in_ch != out_ch:
            self.nin_shortcut = nn.Conv2d(in_ch, out_ch, 1, device=device)
        else:
            self.nin_shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.nin_shortcut(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the spatial positions, channels as features."""

    def __init__(self, ch: int, device=None):
        super().__init__()
        self.norm = _group_norm(ch, device)
        self.q = nn.Conv2d(ch, ch, 1, device=device)
        self.k = nn.Conv2d(ch, ch, 1, device=device)
        self.v = nn.Conv2d(ch, ch, 1, device=device)
        self.proj_out = nn.Conv2d(ch, ch, 1, device=device)

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm(x)
        q = self.q(h)
        k = self.k(h)
        v = self.v(h)
        b, c, hh, ww = q.shape
        q = q.reshape(b, c, hh * ww).transpose(1, 2).float()  # B, N, C
        k = k.reshape(b, c, hh * ww).float()  # B, C, N
        w = torch.softmax(torch.bmm(q, k) * (float(c) ** -0.5), dim=2)  # B, Nq, Nk
        v = v.reshape(b, c, hh * ww)  # B, C, Nk
        out = torch.bmm(v, w.to(v.dtype).transpose(1, 2))  # B, C, Nq
        return x + self.proj_out(out.reshape(b, c, hh, ww))


class Downsample(nn.Module):
    def __init__(self, ch: int, device=None):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=0, device=device)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))


class Upsample(nn.Module):
    def __init__(self, ch: int, device=None):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1, device=device)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class MidBlock(nn.Module):
    def __init__(self, ch: int, device=None):
        super().__init__()
        self.block_1 = ResnetBlock(ch, ch, device)
        self.attn_1 = AttnBlock(ch, device)
        self.block_2 = ResnetBlock(ch, ch, device)

    def forward(self, x: Tensor) -> Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class EncoderLevel(nn.Module):
    """Resolution level i of the encoder: `block.{j}` then `downsample` (not at the last)."""

    def __init__(self, in_ch: int, out_ch: int, num_blocks: int, downsample: bool, device=None):
        super().__init__()
        self.block = nn.ModuleList(
            [ResnetBlock(in_ch if j == 0 else out_ch, out_ch, device) for j in range(num_blocks)])
        self.downsample = Downsample(out_ch, device) if downsample else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        for blk in self.block:
            x = blk(x)
        return self.downsample(x)


class DecoderLevel(nn.Module):
    """Resolution level i of the decoder: `block.{j}` then `upsample` (not at level 0)."""

    def __init__(self, in_ch: int, out_ch: int, num_blocks: int, upsample: bool, device=None):
        super().__init__()
        self.block = nn.ModuleList(
            [ResnetBlock(in_ch if j == 0 else out_ch, out_ch, device) for j in range(num_blocks)])
        self.upsample = Upsample(out_ch, device) if upsample else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        for blk in self.block:
            x = blk(x)
        return self.upsample(x)


@torch.jit.interface
class _LevelInterface(nn.Module):
    # Lets TorchScript index a ModuleList with a loop variable (the decoder walks its
    # levels from the last to the first while the key names number them first to last).
    def forward(self, x: Tensor) -> Tensor:
        pass


class Encoder(nn.Module):
    def __init__(self, ch: int, ch_mult: Tuple[int, ...], num_res_blocks: int, z_channels: int,
                 double_z: bool = True, in_channels: int = IMAGE_CHANNELS, device=None):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1, device=device)
        in_mult = (1,) + tuple(ch_mult)
        levels = []
        for i, mult in enumerate(ch_mult):
            levels.append(EncoderLevel(ch * in_mult[i], ch * mult, num_res_blocks,
                                       downsample=(i != len(ch_mult) - 1), device=device))
        self.down = nn.ModuleList(levels)
        block_in = ch * ch_mult[-1]
        self.mid = MidBlock(block_in, device)
        self.norm_out = _group_norm(block_in, device)
        out = 2 * z_channels if double_z else z_channels
        self.conv_out = nn.Conv2d(block_in, out, 3, padding=1, device=device)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = level(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, ch: int, ch_mult: Tuple[int, ...], num_res_blocks: int, z_channels: int,
                 out_channels: int = IMAGE_CHANNELS, device=None):
        super().__init__()
        block_in = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(z_channels, block_in, 3, padding=1, device=device)
        self.mid = MidBlock(block_in, device)
        levels: List[Optional[nn.Module]] = [None] * len(ch_mult)
        for i in reversed(range(len(ch_mult))):  # built in running order, stored by level
            block_out = ch * ch_mult[i]
            levels[i] = DecoderLevel(block_in, block_out, num_res_blocks + 1,
                                     upsample=(i != 0), device=device)
            block_in = block_out
        self.up = nn.ModuleList(levels)
        self.norm_out = _group_norm(block_in, device)
        self.conv_out = nn.Conv2d(block_in, out_channels, 3, padding=1, device=device)

    def forward(self, z: Tensor) -> Tensor:
        h = self.mid(self.conv_in(z))
        for i in range(len(self.up) - 1, -1, -1):
            level: _LevelInterface = self.up[i]
            h = level.forward(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Autoencoder(nn.Module):
    """KL-f8 autoencoder. TorchScript methods: encode_moments(x), decode(z), forward(x).

    x: [B, 3, H, W] in [-1, 1]; moments: [B, 8, H/f, W/f] (0..3 mean, 4..7 logvar);
    z: the scaled latent [B, 4, h, w] (0.18215 times the posterior sample).
    """

    def __init__(self, ch: int = 128, ch_mult: Tuple[int, ...] = (1, 2, 4, 4),
                 num_res_blocks: int = 2, z_channels: int = 4, embed_dim: int = 4,
                 device=None):
        super().__init__()
        ch_mult = tuple(int(m) for m in ch_mult)
        self.encoder = Encoder(ch, ch_mult, num_res_blocks, z_channels, True, device=device)
        self.decoder = Decoder(ch, ch_mult, num_res_blocks, z_channels, device=device)
        self.quant_conv = nn.Conv2d(2 * z_channels, 2 * embed_dim, 1, device=device)
        self.post_quant_conv = nn.Conv2d(embed_dim, z_channels, 1, device=device)
        # Attributes readable from C++ with module.attr(name).
        self.scale_factor: float = SCALE_FACTOR
        self.z_channels: int = z_channels
        self.embed_dim: int = embed_dim
        self.ch: int = ch
        self.ch_mult: List[int] = list(ch_mult)
        self.num_res_blocks: int = num_res_blocks
        self.downsample_factor: int = 2 ** (len(ch_mult) - 1)

    @torch.jit.export
    def encode_moments(self, x: Tensor) -> Tensor:
        h = self.encoder(x.to(self.quant_conv.weight.dtype))
        return self.quant_conv(h).to(x.dtype)

    @torch.jit.export
    def decode(self, z: Tensor) -> Tensor:
        h = self.post_quant_conv(z.to(self.post_quant_conv.weight.dtype) / self.scale_factor)
        return self.decoder(h).to(z.dtype)

    def forward(self, x: Tensor) -> Tensor:
        return self.encode_moments(x)
