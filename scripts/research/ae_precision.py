#!/usr/bin/python3
"""How far the autoencoder's decoded pixels move in reduced precision, in grey levels.

Decodes the same random latents with the exported autoencoder cast to fp32 and to each of
--precisions (as copgen's --ae-precision casts it), converts to 8-bit pixels exactly as
copgen does (floor(clamp((y + 1) / 2, 0, 1) * 255 + 0.5)) and prints, per precision, the
largest and mean absolute difference from fp32 in grey levels and the share of pixels
more than 1 grey level off. copgen's --ae-precision auto (fp32) is chosen from these
figures (docs/performance.md).

    /usr/bin/python3 scripts/research/ae_precision.py --models build/tests/models/tiny --device cpu \\
        --precisions bf16 --batch 2
"""

import argparse
import json
import os
import sys
import time

import torch


def to_pixels(y: torch.Tensor) -> torch.Tensor:
    return torch.floor(torch.clamp((y.float() + 1.0) / 2.0, 0.0, 1.0) * 255.0 + 0.5)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", required=True, help="models directory (copgen.json + autoencoder)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precisions", default="bf16", help="comma-separated: bf16, fp16")
    p.add_argument("--batch", type=int, default=2, help="latents decoded")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the JSON to this file")
    a = p.parse_args(argv)
    with open(os.path.join(a.models, "copgen.json"), encoding="utf-8") as f:
        m = json.load(f)
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    device = torch.device(a.device)
    ae = torch.jit.load(os.path.join(a.models, m["autoencoder"]["file"]), map_location="cpu").eval()
    c, h = m["latent_shape"][0], m["latent_shape"][1]
    gen = torch.Generator().manual_seed(a.seed)
    z = torch.randn((a.batch, c, h, h), generator=gen)
    results = {}
    with torch.inference_mode():
        ae.to(device, torch.float32)
        ref = to_pixels(ae.decode(z.to(device))).cpu()
        for name in [v for v in a.precisions.split(",") if v]:
            start = time.perf_counter()
            ae.to(device, dtypes[name])
            got = to_pixels(ae.decode(z.to(device, dtypes[name]))).cpu()
            diff = (got - ref).abs()
            results[name] = {"max_grey_levels": float(diff.max()), "mean_grey_levels": float(diff.mean()),
                             "share_over_1": float((diff > 1).float().mean()),
                             "seconds": time.perf_counter() - start}
    out = {"models": os.path.abspath(a.models), "device": str(device), "torch": torch.__version__,
           "batch": a.batch, "image_size": m["image_size"], "ae_ch": m["autoencoder"].get("ch"), "results": results}
    text = json.dumps(out, indent=2)
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
