"""The command line: argument parsing (parse_args, with the checks between flags) and
main, which runs the export and turns an ExportError into a message and exit status 1.
scripts/models/export_models.py calls main.
"""

import argparse
import sys
from typing import List, Optional, Tuple

from .common import ExportError
from .export import run
from .extractors import TINY_EXTRACTOR_DIVISOR


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


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except ExportError as exc:
        print(f"export_models.py: error: {exc}", file=sys.stderr)
        return 1
