"""Reading checkpoints: load_checkpoint (plain or wrapped state dicts), the network
dimensions read from a state dict (backbone_dims_from_state_dict,
autoencoder_dims_from_state_dict), the strict load with a short message (check_and_load)
and the batch-norm counters older checkpoints lack (_fill_num_batches_tracked).
"""

import math
import os
from typing import Dict, List

import torch
import torch.nn as nn
from torch import Tensor

from .common import ExportError


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
