"""The diffusion backbone: U-ViT "triffuser_multi_post_ln", one timestep per modality.

MathAttention and SdpaAttention (the same parameters), Mlp, Block, SkipBlock,
PatchEmbed and Backbone (TorchScript methods forward, timestep_embedding, unpatchify);
the state-dict key names are those of the published checkpoint (nnet_ema_114000.pth).
"""

import math
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .common import (HAS_SDPA, LATENT_CHANNELS, LATENT_SIZE, MLP_RATIO, PATCH_SIZE,
                     ExportError)


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
