"""What every part of the exporter shares: copgen's modalities and latent scale, the
published (full) and tiny network dimensions, whether torch has fused attention, and
ExportError, the user-facing failure (printed without a traceback, exit status 1)."""

import torch.nn.functional as F

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
