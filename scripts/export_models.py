#!/usr/bin/python3
"""Export COP-GEN-Beta's two networks to TorchScript for copgen.

Writes a models directory that copgen loads with LibTorch:

    backbone.pt      the U-ViT "triffuser_multi_post_ln" noise predictor (TorchScript)
    autoencoder.pt   the Stable Diffusion v1 KL-f8 autoencoder (TorchScript)
    copgen.json      the manifest: dimensions, schedule, sha256 of both files

The networks are written here from the architecture facts in
shared/reference/cop-gen-beta.md; the state-dict key names are the published ones, so
the real checkpoints load with strict=True:

    /usr/bin/python3 scripts/export_models.py \\
        --backbone nnet_ema_114000.pth --autoencoder autoencoder_kl_ema.pth \\
        --out models/cop-gen-beta

Without checkpoints the networks are randomly initialised (deterministic for --seed);
--tiny makes small ones for tests and demos. --parity-dir writes .npy fixtures computed
with the eager modules, which copgen's C++ tests compare against. See models/README.md.

It also writes the metric feature extractors of `copgen metrics` and `copgen eval`
(inception.pt, vgg16.pt, extractors.json; models/README.md, "Metric feature extractors"):

    /usr/bin/python3 scripts/export_models.py \
        --inception pt_inception-2015-12-05-6726825d.pth --vgg vgg16-397923af.pth \
        --extractors-out models/cop-gen-beta

Run it with an interpreter that has torch (Debian: /usr/bin/python3).
"""

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

if __name__ == "__main__" and os.environ.get("PYTHONHASHSEED") != "0" and sys.executable:
    # TorchScript writes some class constants in set order, which follows str hashing:
    # pin the hash seed (before torch is imported) so the same export gives byte-identical
    # files, hence the same sha256 in the manifest.
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

MODALITIES = ["DEM", "S1RTC", "S2L1C", "S2L2A"]
SCALE_FACTOR = 0.18215
IMAGE_CHANNELS = 3
MLP_RATIO = 4
HAS_SDPA = hasattr(F, "scaled_dot_product_attention")

# Full-size (published) and tiny (tests, demos) dimensions.
FULL_BACKBONE = dict(embed_dim=1024, depth=20, num_heads=16)
TINY_BACKBONE = dict(embed_dim=64, depth=4, num_heads=2)
FULL_AE = dict(ch=128, ch_mult=(1, 2, 4, 4), num_res_blocks=2)
TINY_AE = dict(ch=32, ch_mult=(1, 1, 2, 2), num_res_blocks=1)
LATENT_CHANNELS = 4
LATENT_SIZE = 32
PATCH_SIZE = 2


class ExportError(Exception):
    """A user-facing failure: printed without a traceback, exit status 1."""


# ---------------------------------------------------------------------------------------
# Autoencoder (LDM / Stable Diffusion v1 KL-f8), CompVis parameter names.
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# Backbone (U-ViT "triffuser_multi_post_ln"): one timestep per modality.
# ---------------------------------------------------------------------------------------


class MathAttention(nn.Module):
    """Multi-head self-attention; logits and softmax in float32 whatever the dtype."""

    def __init__(self, dim: int, num_heads: int, device=None):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = float(self.head_dim) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=False, device=device)
        self.proj = nn.Linear(dim, dim, device=device)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # B, H, N, hd
        logits = torch.matmul(q.float(), k.float().transpose(-2, -1)) * self.scale
        attn = torch.softmax(logits, dim=-1).to(v.dtype)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(b, n, d)
        return self.proj(out)


class SdpaAttention(nn.Module):
    """Same parameters and result as MathAttention, through torch's fused kernels (>= 2.0)."""

    def __init__(self, dim: int, num_heads: int, device=None):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False, device=device)
        self.proj = nn.Linear(dim, dim, device=device)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        # Default scale is head_dim ** -0.5.
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


def _make_attention(dim: int, num_heads: int, attention: str, device=None) -> nn.Module:
    if attention == "sdpa":
        return SdpaAttention(dim, num_heads, device)
    return MathAttention(dim, num_heads, device)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, device=None):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden, device=device)
        self.fc2 = nn.Linear(hidden, dim, device=device)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU


class Block(nn.Module):
    """Post-LN transformer block (in-blocks and the mid block)."""

    def __init__(self, dim: int, num_heads: int, attention: str, device=None):
        super().__init__()
        self.norm2 = nn.LayerNorm(dim, eps=1e-5, device=device)
        self.attn = _make_attention(dim, num_heads, attention, device)
        self.norm3 = nn.LayerNorm(dim, eps=1e-5, device=device)
        self.mlp = Mlp(dim, MLP_RATIO * dim, device)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm2(x + self.attn(x))
        return self.norm3(x + self.mlp(x))


class SkipBlock(nn.Module):
    """Post-LN block with a long skip (out-blocks): norm1(skip_linear([x, skip])) first."""

    def __init__(self, dim: int, num_heads: int, attention: str, device=None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5, device=device)
        self.skip_linear = nn.Linear(2 * dim, dim, device=device)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5, device=device)
        self.attn = _make_attention(dim, num_heads, attention, device)
        self.norm3 = nn.LayerNorm(dim, eps=1e-5, device=device)
        self.mlp = Mlp(dim, MLP_RATIO * dim, device)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.norm1(self.skip_linear(torch.cat([x, skip], dim=-1)))
        x = self.norm2(x + self.attn(x))
        return self.norm3(x + self.mlp(x))


class PatchEmbed(nn.Module):
    def __init__(self, in_ch: int, dim: int, patch: int, device=None):
        super().__init__()
        self.proj = nn.Conv2d(in_ch, dim, patch, stride=patch, device=device)

    def forward(self, z: Tensor) -> Tensor:
        return self.proj(z).flatten(2).transpose(1, 2)  # B, (H/p)(W/p) row-major, D


class Backbone(nn.Module):
    """forward(z [B, M, C, S, S], t [B, M] labels in [0, 1000]) -> noise [B, M, C, S, S]."""

    def __init__(self, embed_dim: int = 1024, depth: int = 20, num_heads: int = 16,
                 num_modalities: int = 4, latent_channels: int = LATENT_CHANNELS,
                 latent_size: int = LATENT_SIZE, patch_size: int = PATCH_SIZE,
                 attention: Optional[str] = None, device=None):
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ExportError(f"embed dim {embed_dim} is not a multiple of num_heads {num_heads}")
        if embed_dim % 2 != 0:
            raise ExportError(f"embed dim {embed_dim} must be even (sinusoidal time token)")
        if depth % 2 != 0 or depth < 2:
            raise ExportError(f"depth {depth} must be even and >= 2")
        if latent_size % patch_size != 0:
            raise ExportError(f"latent size {latent_size} is not a multiple of patch {patch_size}")
        if attention is None:
            attention = "sdpa" if HAS_SDPA else "math"
        if attention == "sdpa" and not HAS_SDPA:
            raise ExportError(f"torch {torch.__version__} has no scaled_dot_product_attention")
        self.attention = attention
        grid = latent_size // patch_size
        self.patch_embeds = nn.ModuleList(
            [PatchEmbed(latent_channels, embed_dim, patch_size, device)
             for _ in range(num_modalities)])
        num_tokens = num_modalities + num_modalities * grid * grid
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, embed_dim, device=device))
        if self.pos_embed.device.type != "meta":
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        half = depth // 2
        self.in_blocks = nn.ModuleList(
            [Block(embed_dim, num_heads, attention, device) for _ in range(half)])
        self.mid_block = Block(embed_dim, num_heads, attention, device)
        self.out_blocks = nn.ModuleList(
            [SkipBlock(embed_dim, num_heads, attention, device) for _ in range(half)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-5, device=device)
        self.decoder_preds = nn.ModuleList(
            [nn.Linear(embed_dim, patch_size * patch_size * latent_channels, device=device)
             for _ in range(num_modalities)])
        # Attributes readable from C++ with module.attr(name).
        self.embed_dim: int = embed_dim
        self.depth: int = depth
        self.num_heads: int = num_heads
        self.num_modalities: int = num_modalities
        self.latent_channels: int = latent_channels
        self.latent_size: int = latent_size
        self.patch_size: int = patch_size
        self.grid_size: int = grid

    @torch.jit.export
    def timestep_embedding(self, t: Tensor) -> Tensor:
        """Raw sinusoidal time token: [..., D] float32 = cat(cos(t f), sin(t f)),
        f_i = exp(-ln(10000) i / (D/2)), i = 0..D/2-1."""
        half = self.embed_dim // 2
        freqs = torch.exp(
            torch.arange(half, dtype=torch.float32, device=t.device) * (-math.log(10000.0) / half))
        args = t.to(torch.float32).unsqueeze(-1) * freqs
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)

    @torch.jit.export
    def unpatchify(self, feat: Tensor) -> Tensor:
        """[B, G*G, p*p*C] with features ordered (p1, p2, c) -> [B, C, G*p, G*p]:
        out[b, c, p h + p1, p w + p2] = feat[b, G h + w, C (p p1 + p2) + c]."""
        b = feat.shape[0]
        g = self.grid_size
        p = self.patch_size
        c = self.latent_channels
        x = feat.reshape(b, g, g, p, p, c).permute(0, 5, 1, 3, 2, 4)  # b, c, h, p1, w, p2
        return x.reshape(b, c, g * p, g * p)

    def forward(self, z: Tensor, t: Tensor) -> Tensor:
        m_count = self.num_modalities
        size = self.latent_size
        if (z.dim() != 5 or z.shape[1] != m_count or z.shape[2] != self.latent_channels
                or z.shape[3] != size or z.shape[4] != size):
            raise RuntimeError("backbone: z must be [B, " + str(m_count) + ", "
                               + str(self.latent_channels) + ", " + str(size) + ", "
                               + str(size) + "], got " + str(z.shape))
        if t.dim() != 2 or t.shape[0] != z.shape[0] or t.shape[1] != m_count:
            raise RuntimeError("backbone: t must be [B, " + str(m_count) + "] for z of batch "
                               + str(z.shape[0]) + ", got " + str(t.shape))
        dtype = self.pos_embed.dtype
        x_in = z.to(dtype)
        time_tokens = self.timestep_embedding(t).to(dtype)  # B, M, D
        patches: List[Tensor] = [time_tokens]
        for m, embed in enumerate(self.patch_embeds):
            patches.append(embed(x_in[:, m]))
        x = torch.cat(patches, dim=1) + self.pos_embed

        skips: List[Tensor] = []
        for blk in self.in_blocks:
            x = blk(x)
            skips.append(x)
        x = self.mid_block(x)
        for blk in self.out_blocks:
            x = blk(x, skips.pop())
        x = self.norm(x)

        x = x[:, m_count:]
        n = self.grid_size * self.grid_size
        outs: List[Tensor] = []
        for m, head in enumerate(self.decoder_preds):
            outs.append(self.unpatchify(head(x[:, m * n:(m + 1) * n])))
        return torch.stack(outs, dim=1).to(z.dtype)


# ---------------------------------------------------------------------------------------
# Metric feature extractors: the FID Inception-v3 (pool3) and VGG16 (fc2 after ReLU).
# Each takes uint8 images [N, 3, H, W] and does the TF1-compatible resize and the
# normalisation inside (shared/reference/metrics.md), so C++ only feeds pixels.
# ---------------------------------------------------------------------------------------

INCEPTION_SIZE = 299
VGG_SIZE = 224
INCEPTION_CLASSES = 1008  # the TF graph's 1008-way logits, kept for strict key matching
VGG_CLASSES = 1000
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TINY_EXTRACTOR_DIVISOR = 16  # --tiny-extractors: every channel count divided by this
EXTRACTORS_MANIFEST = "extractors.json"


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


# ---------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------


def load_checkpoint(path: str, what: str) -> Dict[str, Tensor]:
    """A plain state dict, or one wrapped under 'state_dict' / 'model'; 'module.' stripped."""
    if not os.path.isfile(path):
        raise ExportError(f"{what} checkpoint '{path}': no such file")
    try:
        obj = torch.load(path, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error
        raise ExportError(f"{what} checkpoint '{path}': cannot be read by torch.load: {exc}")
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, dict) and wrapper in obj and isinstance(obj[wrapper], dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict) or not obj:
        raise ExportError(f"{what} checkpoint '{path}': not a state dict")
    sd: Dict[str, Tensor] = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise ExportError(f"{what} checkpoint '{path}': entry '{key}' is not a tensor")
        if key.startswith("module."):
            key = key[len("module."):]
        sd[key] = value
    return sd


def _need(sd: Dict[str, Tensor], key: str, path: str, what: str) -> Tensor:
    if key not in sd:
        raise ExportError(f"{what} checkpoint '{path}': missing key '{key}' "
                          f"(needed to read the network's dimensions)")
    return sd[key]


def _count_indices(sd: Dict[str, Tensor], prefix: str) -> int:
    """Number of consecutive indices i with some key starting with prefix + 'i.'."""
    found = set()
    for key in sd:
        if key.startswith(prefix):
            head = key[len(prefix):].split(".", 1)[0]
            if head.isdigit():
                found.add(int(head))
    n = 0
    while n in found:
        n += 1
    return n


def backbone_dims_from_state_dict(sd: Dict[str, Tensor], path: str) -> dict:
    what = "backbone"
    pos = _need(sd, "pos_embed", path, what)
    proj = _need(sd, "patch_embeds.0.proj.weight", path, what)
    if pos.dim() != 3 or proj.dim() != 4:
        raise ExportError(f"backbone checkpoint '{path}': unexpected shapes pos_embed "
                          f"{list(pos.shape)}, patch_embeds.0.proj.weight {list(proj.shape)}")
    embed_dim = int(pos.shape[-1])
    num_modalities = _count_indices(sd, "patch_embeds.")
    depth = 2 * _count_indices(sd, "in_blocks.")
    latent_channels = int(proj.shape[1])
    patch = int(proj.shape[-1])
    patch_tokens = int(pos.shape[1]) - num_modalities
    grid = int(round(math.sqrt(max(patch_tokens, 0) / max(num_modalities, 1))))
    if num_modalities < 1 or grid * grid * num_modalities != patch_tokens:
        raise ExportError(f"backbone checkpoint '{path}': pos_embed {list(pos.shape)} does not fit "
                          f"{num_modalities} modalities of a square patch grid")
    if depth == 0:
        raise ExportError(f"backbone checkpoint '{path}': no in_blocks.* keys")
    return dict(embed_dim=embed_dim, depth=depth, num_modalities=num_modalities,
                latent_channels=latent_channels, latent_size=grid * patch, patch_size=patch)


def autoencoder_dims_from_state_dict(sd: Dict[str, Tensor], path: str) -> dict:
    what = "autoencoder"
    conv_in = _need(sd, "encoder.conv_in.weight", path, what)
    ch = int(conv_in.shape[0])
    levels = _count_indices(sd, "encoder.down.")
    if levels == 0:
        raise ExportError(f"autoencoder checkpoint '{path}': no encoder.down.* keys")
    ch_mult = []
    for i in range(levels):
        w = _need(sd, f"encoder.down.{i}.block.0.conv1.weight", path, what)
        if int(w.shape[0]) % ch != 0:
            raise ExportError(f"autoencoder checkpoint '{path}': encoder.down.{i}.block.0.conv1 "
                              f"has {int(w.shape[0])} channels, not a multiple of ch={ch}")
        ch_mult.append(int(w.shape[0]) // ch)
    num_res_blocks = _count_indices(sd, "encoder.down.0.block.")
    quant = _need(sd, "quant_conv.weight", path, what)
    post = _need(sd, "post_quant_conv.weight", path, what)
    return dict(ch=ch, ch_mult=tuple(ch_mult), num_res_blocks=num_res_blocks,
                z_channels=int(post.shape[0]), embed_dim=int(quant.shape[0]) // 2)


def check_and_load(module: nn.Module, sd: Dict[str, Tensor], path: str, what: str) -> None:
    """strict=True load, with a short message naming the first offending keys."""
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    mismatched = [f"{k} (checkpoint {list(sd[k].shape)}, expected {list(own[k].shape)})"
                  for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    problems = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                         ("shape mismatches", mismatched)):
        if items:
            more = f" ... and {len(items) - 5} more" if len(items) > 5 else ""
            problems.append(f"{label}: " + ", ".join(items[:5]) + more)
    if problems:
        raise ExportError(f"{what} checkpoint '{path}' does not match the {what} architecture; "
                          + "; ".join(problems))
    module.load_state_dict(sd, strict=True)


# ---------------------------------------------------------------------------------------
# Building, exporting, fixtures
# ---------------------------------------------------------------------------------------


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build_backbone(args, log) -> Tuple[Backbone, str]:
    explicit = dict(embed_dim=args.embed_dim, depth=args.depth)
    num_heads = args.num_heads or (TINY_BACKBONE if args.tiny else FULL_BACKBONE)["num_heads"]
    attention = None if args.attention == "auto" else args.attention
    if args.backbone:
        sd = load_checkpoint(args.backbone, "backbone")
        dims = backbone_dims_from_state_dict(sd, args.backbone)
        for name, value in explicit.items():
            if value is not None and value != dims[name]:
                raise ExportError(f"--{name.replace('_', '-')} {value} disagrees with backbone "
                                  f"checkpoint '{args.backbone}' ({name} {dims[name]})")
        if dims["num_modalities"] != len(MODALITIES):
            raise ExportError(f"backbone checkpoint '{args.backbone}': {dims['num_modalities']} "
                              f"modalities, copgen expects {len(MODALITIES)}")
        if dims["embed_dim"] % num_heads != 0:
            raise ExportError(f"backbone checkpoint '{args.backbone}': embed dim "
                              f"{dims['embed_dim']} is not a multiple of --num-heads {num_heads}")
        # Built on the meta device and materialised uninitialised: every value comes from
        # the checkpoint, and random init of 286 M parameters would only cost time.
        model = Backbone(num_heads=num_heads, attention=attention, device="meta", **dims)
        model = model.to_empty(device="cpu")
        check_and_load(model, sd, args.backbone, "backbone")
        source = os.path.basename(args.backbone)
    else:
        base = dict(TINY_BACKBONE if args.tiny else FULL_BACKBONE)
        for name, value in explicit.items():
            if value is not None:
                base[name] = value
        base["num_heads"] = num_heads
        torch.manual_seed(args.seed)
        model = Backbone(num_modalities=len(MODALITIES), attention=attention, **base)
        source = f"random (seed {args.seed})"
    model.eval()
    log(f"backbone: embed_dim {model.embed_dim}, depth {model.depth}, heads {model.num_heads}, "
        f"{count_parameters(model):,} parameters, attention {model.attention}, from {source}")
    return model, source


def build_autoencoder(args, log) -> Tuple[Autoencoder, str]:
    explicit = dict(ch=args.ae_ch, ch_mult=args.ae_ch_mult, num_res_blocks=args.ae_num_res_blocks)
    flags = dict(ch="--ae-ch", ch_mult="--ae-ch-mult", num_res_blocks="--ae-num-res-blocks")
    if args.autoencoder:
        sd = load_checkpoint(args.autoencoder, "autoencoder")
        dropped = [k for k in sd if k.startswith("loss.")]
        for k in dropped:  # training-only loss network (LPIPS, discriminator) if present
            del sd[k]
        if dropped:
            log(f"autoencoder: ignoring {len(dropped)} training-loss keys (loss.*)")
        dims = autoencoder_dims_from_state_dict(sd, args.autoencoder)
        for name, value in explicit.items():
            if value is not None and value != dims[name]:  # ch_mult: both tuples
                raise ExportError(f"{flags[name]} {value} disagrees with autoencoder checkpoint "
                                  f"'{args.autoencoder}' ({name} {dims[name]})")
        model = Autoencoder(device="meta", **dims).to_empty(device="cpu")
        check_and_load(model, sd, args.autoencoder, "autoencoder")
        source = os.path.basename(args.autoencoder)
    else:
        base = dict(TINY_AE if args.tiny else FULL_AE)
        for name, value in explicit.items():
            if value is not None:
                base[name] = value
        for i, mult in enumerate(base["ch_mult"]):
            if (base["ch"] * mult) % 32 != 0:
                raise ExportError(f"--ae-ch {base['ch']} x ch_mult {mult} is not a multiple of "
                                  f"32 (GroupNorm groups)")
        torch.manual_seed(args.seed)
        model = Autoencoder(**base)
        source = f"random (seed {args.seed})"
    model.eval()
    log(f"autoencoder: ch {model.ch}, ch_mult {model.ch_mult}, num_res_blocks "
        f"{model.num_res_blocks}, {count_parameters(model):,} parameters, from {source}")
    return model, source


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


_UMASK = os.umask(0)
os.umask(_UMASK)


def _atomic_write(final_path: str, write) -> None:
    """write(tmp_path) then rename over final_path; nothing partial is left on failure.

    The temporary has the final file's name inside a hidden temporary directory next to
    it: torch.jit.save names the archive's root folder after the file, so a random
    temporary name would make otherwise identical exports differ byte for byte.
    """
    directory = os.path.dirname(os.path.abspath(final_path))
    tmp_dir = tempfile.mkdtemp(prefix=".copgen-export-", dir=directory)
    tmp = os.path.join(tmp_dir, os.path.basename(final_path))
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, final_path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def save_torchscript(module: nn.Module, path: str) -> None:
    scripted = torch.jit.script(module)
    _atomic_write(path, lambda tmp: torch.jit.save(scripted, tmp))


def save_npy(path: str, tensor: Tensor) -> None:
    import numpy as np
    array = np.ascontiguousarray(tensor.detach().cpu().to(torch.float32).numpy(), dtype="<f4")

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array)

    _atomic_write(path, write)


def write_parity_fixtures(directory: str, backbone: Backbone, autoencoder: Autoencoder,
                          log) -> List[str]:
    """Fixtures for copgen's C++ parity tests, from the eager modules in float32."""
    os.makedirs(directory, exist_ok=True)
    written = []

    def put(name: str, tensor: Tensor) -> None:
        save_npy(os.path.join(directory, name), tensor)
        written.append(name)

    m = backbone.num_modalities
    c = backbone.latent_channels
    s = backbone.latent_size
    image = s * autoencoder.downsample_factor
    with torch.no_grad():
        torch.manual_seed(1234)
        z = torch.randn(2, m, c, s, s)
        t = torch.tensor([[0.0, 250.5, 999.0, 1000.0], [1000.0, 0.0, 10.25, 500.0]])[:, :m]
        put("backbone_z.npy", z)
        put("backbone_t.npy", t)
        put("backbone_out.npy", backbone(z, t))

        x = torch.rand(2, IMAGE_CHANNELS, image, image) * 2.0 - 1.0
        put("ae_x.npy", x)
        put("ae_moments.npy", autoencoder.encode_moments(x))
        ae_z = torch.randn(2, autoencoder.embed_dim, s, s) * SCALE_FACTOR
        put("ae_z.npy", ae_z)
        put("ae_decoded.npy", autoencoder.decode(ae_z))

        torch.manual_seed(1234)
        a = torch.randn(3, 2, 4, 32, 32)
        b = torch.randn(2, 4, 32, 32)
        put("randn_1234_a.npy", a)
        put("randn_1234_b.npy", b)

        put("timestep_embedding.npy",
            backbone.timestep_embedding(torch.tensor([0.0, 1.0, 500.5, 1000.0])))
    log(f"parity fixtures: {len(written)} files in {directory}")
    return written


def make_manifest(backbone: Backbone, backbone_source: str, backbone_sha: str,
                  autoencoder: Autoencoder, autoencoder_source: str, autoencoder_sha: str) -> dict:
    return {
        "format": "copgen-models",
        "format_version": 1,
        "modalities": list(MODALITIES),
        "latent_shape": [backbone.latent_channels, backbone.latent_size, backbone.latent_size],
        "image_size": backbone.latent_size * autoencoder.downsample_factor,
        "scale_factor": SCALE_FACTOR,
        "schedule": {"type": "discrete_vp", "beta_schedule": "scaled_linear",
                     "beta_start": 0.00085, "beta_end": 0.012, "num_timesteps": 1000},
        "backbone": {
            "file": "backbone.pt",
            "sha256": backbone_sha,
            "embed_dim": backbone.embed_dim,
            "depth": backbone.depth,
            "num_heads": backbone.num_heads,
            "mlp_ratio": MLP_RATIO,
            "patch_size": backbone.patch_size,
            "num_modalities": backbone.num_modalities,
            "qkv_bias": False,
            "parameters": count_parameters(backbone),
            "attention": backbone.attention,
            "source": backbone_source,
        },
        "autoencoder": {
            "file": "autoencoder.pt",
            "sha256": autoencoder_sha,
            "ch": autoencoder.ch,
            "ch_mult": list(autoencoder.ch_mult),
            "num_res_blocks": autoencoder.num_res_blocks,
            "z_channels": autoencoder.z_channels,
            "embed_dim": autoencoder.embed_dim,
            "parameters": count_parameters(autoencoder),
            "source": autoencoder_source,
        },
        "exporter": {"script": "export_models.py", "torch_version": torch.__version__},
    }


# ---------------------------------------------------------------------------------------
# Extractors: building, exporting, manifest, fixtures
# ---------------------------------------------------------------------------------------


def _fill_num_batches_tracked(module: nn.Module, sd: Dict[str, Tensor]) -> List[str]:
    """Adds the `*.num_batches_tracked` counters a checkpoint lacks (older torch wrote
    none; they are unused in eval mode). Returns the keys added."""
    added = []
    for key, value in module.state_dict().items():
        if key.endswith(".num_batches_tracked") and key not in sd:
            prefix = key[:-len("num_batches_tracked")]
            if prefix + "running_mean" in sd:
                sd[key] = torch.zeros_like(value, device="cpu")
                added.append(key)
    return added


def build_extractor(kind: str, args, log) -> Tuple[nn.Module, str]:
    """kind: "inception" or "vgg16". From --inception/--vgg (strict), else random."""
    cls = FIDInceptionV3 if kind == "inception" else VGG16Features
    path = args.inception if kind == "inception" else args.vgg
    flag = "--inception" if kind == "inception" else "--vgg"
    if path:
        sd = load_checkpoint(path, f"{kind} ({flag})")
        model = cls(device="meta").to_empty(device="cpu")
        if kind == "vgg16":  # non-persistent buffers are left uninitialised by to_empty
            model.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            model.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        added = _fill_num_batches_tracked(model, sd)
        if added:
            log(f"{kind}: checkpoint has no num_batches_tracked counters; set {len(added)} to 0")
        check_and_load(model, sd, path, kind)
        source = os.path.basename(path)
    else:
        divisor = TINY_EXTRACTOR_DIVISOR if args.tiny_extractors else 1
        torch.manual_seed(args.seed)
        model = cls(width_divisor=divisor)
        _init_random(model)
        source = f"random (seed {args.seed})"
    model.eval()
    log(f"{kind}: {model.name}, {model.feature} features of {model.feature_dim}, input "
        f"{model.input_size}, width divisor {model.width_divisor}, "
        f"{count_parameters(model):,} parameters, from {source}")
    return model, source


def extractor_manifest_entry(model: nn.Module, file: str, sha: str, source: str) -> dict:
    return {
        "file": file,
        "sha256": sha,
        "name": model.name,
        "feature": model.feature,
        "feature_dim": model.feature_dim,
        "input_size": model.input_size,
        "normalization": model.normalization,
        "resize": "tf1-bilinear",
        "width_divisor": model.width_divisor,
        "parameters": count_parameters(model),
        "source": source,
    }


def write_extractor_parity_fixtures(directory: str, inception: nn.Module, vgg: nn.Module,
                                    log) -> List[str]:
    """Fixtures for copgen's C++ extractor parity test, from the eager modules."""
    os.makedirs(directory, exist_ok=True)
    written = []

    def put(name: str, tensor: Tensor) -> None:
        save_npy(os.path.join(directory, name), tensor)
        written.append(name)

    with torch.no_grad():
        g = torch.Generator().manual_seed(4321)
        # a small non-square batch (upsampled) and a thumbnail-sized one (downsampled)
        for tag, shape in (("a", (3, 3, 37, 52)), ("b", (2, 3, 256, 256))):
            images = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
            put(f"extractor_images_{tag}.npy", images.float())  # uint8 values, stored as float32
            put(f"inception_features_{tag}.npy", inception(images))
            put(f"vgg16_features_{tag}.npy", vgg(images))
    log(f"extractor parity fixtures: {len(written)} files in {directory}")
    return written


def export_extractors(args, log) -> List[str]:
    out = args.extractors_out or args.out
    os.makedirs(out, exist_ok=True)
    written = []
    entries = {}
    modules = {}
    for kind, file in (("inception", "inception.pt"), ("vgg16", "vgg16.pt")):
        model, source = build_extractor(kind, args, log)
        path = os.path.join(out, file)
        save_torchscript(model, path)
        written.append(path)
        entries[kind] = extractor_manifest_entry(model, file, sha256_file(path), source)
        modules[kind] = model
    manifest = {
        "format": "copgen-extractors",
        "format_version": 1,
        "inception": entries["inception"],
        "vgg16": entries["vgg16"],
        "exporter": {"script": "export_models.py", "torch_version": torch.__version__},
    }
    manifest_path = os.path.join(out, EXTRACTORS_MANIFEST)

    def write_manifest(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")

    _atomic_write(manifest_path, write_manifest)
    written.append(manifest_path)
    if args.parity_dir:
        names = write_extractor_parity_fixtures(args.parity_dir, modules["inception"],
                                                modules["vgg16"], log)
        written.extend(os.path.join(args.parity_dir, n) for n in names)
    return written


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _int_list(text: str) -> Tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'")
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got '{text}'")
    return values


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="export_models.py",
        description="Export COP-GEN-Beta's backbone and autoencoder to TorchScript for copgen.")
    p.add_argument("--out", metavar="DIR",
                   help="models directory to write (backbone.pt, autoencoder.pt, copgen.json); "
                        "required unless only extractors are exported with --extractors-out")
    p.add_argument("--backbone", metavar="PATH",
                   help="backbone checkpoint (nnet_ema_114000.pth); random init without it")
    p.add_argument("--autoencoder", metavar="PATH",
                   help="autoencoder checkpoint (autoencoder_kl_ema.pth); random init without it")
    p.add_argument("--seed", type=int, default=0, help="seed of the random init (default 0)")
    p.add_argument("--tiny", action="store_true",
                   help="small random networks for tests and demos (backbone 64/4/2 heads, "
                        "autoencoder ch 32, ch_mult 1,1,2,2, 1 res block)")
    p.add_argument("--embed-dim", type=_positive_int, help="backbone embed dim (default 1024, 64 with --tiny; with --backbone it "
                        "is read from the checkpoint and must agree)")
    p.add_argument("--depth", type=_positive_int, help="backbone depth, even (default 20, 4 with --tiny; read from --backbone)")
    p.add_argument("--num-heads", type=_positive_int,
                   help="backbone attention heads; not stored in checkpoints "
                        "(default 16, 2 with --tiny)")
    p.add_argument("--ae-ch", type=_positive_int, help="autoencoder base channels (default 128, 32 with --tiny; read from "
                        "--autoencoder)")
    p.add_argument("--ae-ch-mult", type=_int_list, metavar="LIST",
                   help="autoencoder channel multipliers (default 1,2,4,4, 1,1,2,2 with --tiny; "
                        "read from --autoencoder)")
    p.add_argument("--ae-num-res-blocks", type=_positive_int,
                   help="autoencoder res blocks per level (default 2, 1 with --tiny; read from "
                        "--autoencoder)")
    p.add_argument("--attention", choices=("auto", "sdpa", "math"), default="auto",
                   help="backbone attention: sdpa (torch >= 2 fused kernels) or math; "
                        "auto picks sdpa where available")
    p.add_argument("--save-state-dicts", metavar="DIR",
                   help="also save backbone_state_dict.pth and autoencoder_state_dict.pth")
    p.add_argument("--parity-dir", metavar="DIR", help="also write .npy parity fixtures")
    p.add_argument("--threads", type=_positive_int,
                   help="torch CPU threads (default: the CPUs this process may use, at most 16)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    x = p.add_argument_group(
        "metric feature extractors",
        "The FID Inception-v3 and VGG16 that copgen metrics/eval use (inception.pt, vgg16.pt, "
        "extractors.json). Exported when any of these flags is given; each network comes "
        "from its checkpoint, else random weights (deterministic for --seed).")
    x.add_argument("--inception", metavar="PTH",
                   help="FID Inception weights (pt_inception-2015-12-05-6726825d.pth)")
    x.add_argument("--vgg", metavar="PTH", help="torchvision VGG16 weights (vgg16-397923af.pth)")
    x.add_argument("--tiny-extractors", action="store_true",
                   help=f"small random extractors for tests (every channel count divided by "
                        f"{TINY_EXTRACTOR_DIVISOR}; same preprocessing and interface)")
    x.add_argument("--extractors-out", metavar="DIR",
                   help="directory for the extractors (default: --out); alone, without --out, "
                        "only the extractors are exported")
    args = p.parse_args(argv)
    if not args.out and not args.extractors_out:
        p.error("the following arguments are required: --out (or --extractors-out)")
    if args.tiny_extractors and (args.inception or args.vgg):
        p.error("--tiny-extractors makes random extractors; it cannot be combined with "
                "--inception or --vgg")
    if not args.out:
        for flag in ("backbone", "autoencoder", "save_state_dicts"):
            if getattr(args, flag):
                p.error(f"--{flag.replace('_', '-')} needs --out (the models directory)")
    return args


def extractors_requested(args: argparse.Namespace) -> bool:
    return bool(args.inception or args.vgg or args.tiny_extractors or args.extractors_out)


def _default_threads() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 16))


def run(args: argparse.Namespace) -> int:
    def log(message: str) -> None:
        if not args.quiet:
            print(message, flush=True)

    started = time.monotonic()
    torch.set_num_threads(args.threads or _default_threads())
    torch.set_grad_enabled(False)

    if not args.out:  # --extractors-out alone: only the metric feature extractors
        written = export_extractors(args, log)
        if not args.quiet:
            print(f"wrote in {time.monotonic() - started:.1f} s:")
            for path in written:
                print(f"  {path} ({os.path.getsize(path):,} bytes)")
        return 0

    backbone, backbone_source = build_backbone(args, log)
    autoencoder, autoencoder_source = build_autoencoder(args, log)
    if backbone.latent_channels != autoencoder.embed_dim:
        raise ExportError(f"backbone latents have {backbone.latent_channels} channels, the "
                          f"autoencoder's {autoencoder.embed_dim}")

    out = args.out
    os.makedirs(out, exist_ok=True)
    written = []
    backbone_path = os.path.join(out, "backbone.pt")
    save_torchscript(backbone, backbone_path)
    written.append(backbone_path)
    autoencoder_path = os.path.join(out, "autoencoder.pt")
    save_torchscript(autoencoder, autoencoder_path)
    written.append(autoencoder_path)

    manifest = make_manifest(backbone, backbone_source, sha256_file(backbone_path),
                             autoencoder, autoencoder_source, sha256_file(autoencoder_path))
    manifest_path = os.path.join(out, "copgen.json")

    def write_manifest(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")

    _atomic_write(manifest_path, write_manifest)
    written.append(manifest_path)

    if args.save_state_dicts:
        os.makedirs(args.save_state_dicts, exist_ok=True)
        for name, module in (("backbone_state_dict.pth", backbone),
                             ("autoencoder_state_dict.pth", autoencoder)):
            path = os.path.join(args.save_state_dicts, name)
            state = module.state_dict()
            _atomic_write(path, lambda tmp, s=state: torch.save(s, tmp))
            written.append(path)

    if args.parity_dir:
        names = write_parity_fixtures(args.parity_dir, backbone, autoencoder, log)
        written.extend(os.path.join(args.parity_dir, n) for n in names)

    if extractors_requested(args):
        written.extend(export_extractors(args, log))

    if not args.quiet:
        print(f"wrote in {time.monotonic() - started:.1f} s:")
        for path in written:
            print(f"  {path} ({os.path.getsize(path):,} bytes)")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except ExportError as exc:
        print(f"export_models.py: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
