"""Building the networks (random or from checkpoints) and writing a models directory:
backbone.pt, autoencoder.pt and copgen.json; the extractors (inception.pt, vgg16.pt,
extractors.json); the .npy parity fixtures; the state dicts. Every file is written
atomically (_atomic_write). run(args) does one export for parsed arguments.
"""

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import time
from typing import List, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from .autoencoder import Autoencoder
from .backbone import Backbone
from .checkpoints import (_fill_num_batches_tracked, autoencoder_dims_from_state_dict,
                          backbone_dims_from_state_dict, check_and_load, load_checkpoint)
from .common import (FULL_AE, FULL_BACKBONE, IMAGE_CHANNELS, MLP_RATIO, MODALITIES,
                     SCALE_FACTOR, TINY_AE, TINY_BACKBONE, ExportError)
from .extractors import (IMAGENET_MEAN, IMAGENET_STD, TINY_EXTRACTOR_DIVISOR, FIDInceptionV3,
                         VGG16Features, _init_random)

EXTRACTORS_MANIFEST = "extractors.json"


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
