#!/usr/bin/python3
"""Runs scripts/gpu/gpu_check.sh --dry-run with a build and checks its JSON summary: every
step present and ok, with the figures each step reports (ctest: gpu_check_dry_run)."""

import argparse
import json
import os
import subprocess
import sys

STEPS = ["environment", "export", "gpu_tests", "translate", "cuda_graphs", "ae_precision", "bench"]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--build", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    summary_path = os.path.join(a.out, "gpu_check.json")
    if os.path.exists(summary_path):
        os.remove(summary_path)
    r = subprocess.run(["bash", os.path.join(root, "scripts", "gpu", "gpu_check.sh"), "--dry-run", "--build", a.build,
                        "--python", sys.executable, "--out", a.out])
    with open(summary_path, encoding="utf-8") as f:
        s = json.load(f)
    errors = []
    names = [st["name"] for st in s["steps"]]
    if names != STEPS:
        errors.append(f"steps {names}, expected {STEPS}")
    for st in s["steps"]:
        if st["status"] != "ok":
            errors.append(f"step {st['name']}: {st['status']} {st.get('error', st.get('reason', ''))}")
    by = {st["name"]: st.get("details", {}) for st in s["steps"]}
    if s.get("mode") != "dry-run" or s.get("device") != "cpu":
        errors.append(f"mode {s.get('mode')} on {s.get('device')}, expected dry-run on cpu")
    tr = by.get("translate", {})
    if tr.get("cpu_fp32", {}).get("latent_max_abs") != 0.0:
        errors.append("translate: cpu fp32 differs from itself")
    if "pixel_max_abs_grey_levels" not in tr.get("cpu_bf16", {}):
        errors.append("translate: no bf16 difference reported")
    for prec in ("fp32", "bf16"):
        if by.get("cuda_graphs", {}).get(prec, {}).get("identical") is not True:
            errors.append(f"cuda_graphs {prec}: on and off differ on the CPU")
    if "bf16" not in by.get("ae_precision", {}):
        errors.append("ae_precision: no bf16 figures")
    rows = by.get("bench", {}).get("rows", [])
    if len([r for r in rows if "skipped" not in r]) != 4:
        errors.append(f"bench: expected 4 measured rows (fp32, bf16 x batch 1, 2), got {rows}")
    for row in rows:
        if "skipped" not in row and not (row.get("seconds_per_call", 0) > 0 and "speedup_over_reference" in row):
            errors.append(f"bench: row without its timing or the reference comparison: {row}")
    if not os.path.getsize(os.path.join(a.out, "gpu_check.log")):
        errors.append("empty log")
    if r.returncode != 0 and not errors:
        errors.append(f"gpu_check.sh exited {r.returncode} with every step ok")
    for e in errors:
        print("gpu_check_dry_run: " + e, file=sys.stderr)
    print(json.dumps(s, indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
