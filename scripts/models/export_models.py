#!/usr/bin/python3
"""Export COP-GEN-Beta's two networks to TorchScript for copgen.

Writes a models directory that copgen loads with LibTorch:

    backbone.pt      the U-ViT "triffuser_multi_post_ln" noise predictor (TorchScript)
    autoencoder.pt   the Stable Diffusion v1 KL-f8 autoencoder (TorchScript)
    copgen.json      the manifest: dimensions, schedule, sha256 of both files

The networks are written here from the architecture facts in
shared/reference/cop-gen-beta.md; the state-dict key names are the published ones, so
the real checkpoints load with strict=True:

    /usr/bin/python3 scripts/models/export_models.py \\
        --backbone nnet_ema_114000.pth --autoencoder autoencoder_kl_ema.pth \\
        --out models/cop-gen-beta

Without checkpoints the networks are randomly initialised (deterministic for --seed);
--tiny makes small ones for tests and demos. --parity-dir writes .npy fixtures computed
with the eager modules, which copgen's C++ tests compare against. See models/README.md.

It also writes the metric feature extractors of `copgen metrics` and `copgen eval`
(inception.pt, vgg16.pt, extractors.json; models/README.md, "Metric feature extractors"):

    /usr/bin/python3 scripts/models/export_models.py \\
        --inception pt_inception-2015-12-05-6726825d.pth --vgg vgg16-397923af.pth \\
        --extractors-out models/cop-gen-beta

Run it with an interpreter that has torch (Debian: /usr/bin/python3).

This file is the command line only; the code is the copgen_export package beside it
(copgen_export/__init__.py lists its modules). The names below are re-exported for the
tests (tests/python), which `import export_models`.
"""

import os
import sys

if __name__ == "__main__" and os.environ.get("PYTHONHASHSEED") != "0" and sys.executable:
    # TorchScript writes some class constants in set order, which follows str hashing:
    # pin the hash seed (before torch is imported) so the same export gives byte-identical
    # files, hence the same sha256 in the manifest.
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

_HERE = os.path.dirname(os.path.realpath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

# The package (and torch) is imported after the hash seed is pinned (E402).
from copgen_export.autoencoder import Autoencoder  # noqa: E402
from copgen_export.backbone import Backbone  # noqa: E402
from copgen_export.checkpoints import (  # noqa: E402
    autoencoder_dims_from_state_dict, backbone_dims_from_state_dict)
from copgen_export.cli import main, parse_args  # noqa: E402
from copgen_export.common import HAS_SDPA, TINY_AE, TINY_BACKBONE, ExportError  # noqa: E402
from copgen_export.export import build_extractor, count_parameters, run  # noqa: E402
from copgen_export.extractors import (  # noqa: E402
    IMAGENET_MEAN, IMAGENET_STD, BasicConv2d, FIDInceptionA, FIDInceptionC, FIDInceptionE,
    FIDInceptionV3, VGG16Features, _init_random, tf1_resize_bilinear)

__all__ = ["Autoencoder", "Backbone", "autoencoder_dims_from_state_dict",
           "backbone_dims_from_state_dict", "main", "parse_args", "HAS_SDPA", "TINY_AE",
           "TINY_BACKBONE", "ExportError", "build_extractor", "count_parameters", "run",
           "IMAGENET_MEAN", "IMAGENET_STD", "BasicConv2d", "FIDInceptionA", "FIDInceptionC",
           "FIDInceptionE", "FIDInceptionV3", "VGG16Features", "_init_random",
           "tf1_resize_bilinear"]

if __name__ == "__main__":
    sys.exit(main())
