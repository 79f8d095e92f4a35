#!/usr/bin/python3
"""The reference pipeline: copgen's translation done the way COP-GEN-Beta's Python code
does it, for side-by-side speed figures and a parity check.

It loads the same exported TorchScript models (torch.jit.load) that copgen runs, and
translates S2L1C -> S2L2A in a plain PyTorch loop: encode the given tiles, draw the
noise, run the DPM-Solver "fast" singlestep solver (order 3, time-uniform grid, written
here after the structure of the reference's dpm_solver_pp: a noise schedule object, a
data-prediction wrapper, orders and outer/inner timesteps, singlestep updates), decode.

Conditioning and draws follow copgen's documented order (include/copgen/conditioning.hpp):
generated modalities get the solver's latent at t * N, the given one its sampled latent
at 0, unused ones noise drawn once at N; one CPU generator seeded with --seed draws
(1) x_T [G, B, C, h, w], (2) the given modality's posterior eps, (3) each unused
modality's noise. With the same seed the generated latents match copgen's.

    /usr/bin/python3 scripts/research/reference_pipeline.py --models build/tests/models/tiny \\
        --batch-sizes 1,4 --steps 50 --repeat 3

prints JSON timings on stdout (logs go to stderr):

    {"pipeline": "reference", "torch": "1.13.1", "device": "cpu", "precision": "fp32",
     "threads": 2, "results": [{"batch_size": 1, "seconds_per_call": ..., "calls_per_s": ...,
     "e2e_steps": 50, "e2e_seconds": ..., "tuples_per_s": ..., "peak_host_rss_bytes": ...}]}

`copgen bench --compare-reference` runs it with the same models, tiles, seed, threads and
counts. `--reference-settings` runs COP-GEN-Beta's own sampling settings instead (batches
of 6; on CUDA fp16 under torch.autocast). Run it with an interpreter that has torch
(Debian: /usr/bin/python3).
"""

import argparse
import bisect
import json
import math
import os
import sys
import time
from typing import Callable, List, Optional, Sequence

import torch
from torch import Tensor

MODALITIES = ["DEM", "S1RTC", "S2L1C", "S2L2A"]
GIVEN = ["S2L1C"]
GENERATED = ["S2L2A"]


def log(msg: str) -> None:
    print(f"[reference] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Noise schedule: the discrete VP schedule in continuous time (DPM-Solver's "discrete").
# ---------------------------------------------------------------------------------------


def interpolate(x: float, xs: Sequence[float], ys: Sequence[float]) -> float:
    """Piecewise-linear through (xs, ys), xs increasing; linear past both ends."""
    if x <= xs[0]:
        hi = 1
    elif x >= xs[-1]:
        hi = len(xs) - 1
    else:
        hi = bisect.bisect_right(xs, x)
    lo = hi - 1
    w = (x - xs[lo]) / (xs[hi] - xs[lo])
    return ys[lo] + w * (ys[hi] - ys[lo])


class NoiseScheduleVP:
    """betas = linspace(sqrt(beta_start), sqrt(beta_end), N)^2; log_alpha(t) piecewise linear
    through (k/N, 0.5 * sum_{i<=k} log(1 - beta_i)). Scalars in float64, the cancellation-free
    forms (expm1, log1p) throughout."""

    def __init__(self, beta_start: float, beta_end: float, n: int):
        a, b = math.sqrt(beta_start), math.sqrt(beta_end)
        cum = 0.0
        self.total_n = n
        self.t_array, self.log_alpha_array = [], []
        for i in range(n):
            r = b if i == n - 1 else a + (b - a) * i / (n - 1)
            cum += math.log1p(-r * r)
            self.t_array.append((i + 1) / n)
            self.log_alpha_array.append(0.5 * cum)
        self.rev_log_alpha = self.log_alpha_array[::-1]
        self.rev_t = self.t_array[::-1]

    def marginal_log_mean_coeff(self, t: float) -> float:
        return interpolate(t, self.t_array, self.log_alpha_array)

    def marginal_alpha(self, t: float) -> float:
        return math.exp(self.marginal_log_mean_coeff(t))

    def marginal_std(self, t: float) -> float:
        return math.sqrt(-math.expm1(2.0 * self.marginal_log_mean_coeff(t)))

    def marginal_lambda(self, t: float) -> float:
        log_mean = self.marginal_log_mean_coeff(t)
        return log_mean - 0.5 * math.log(-math.expm1(2.0 * log_mean))

    def inverse_lambda(self, lamb: float) -> float:
        # log_alpha = -0.5 * logaddexp(0, -2 lambda)
        a = -2.0 * lamb
        log_alpha = -0.5 * (max(0.0, a) + math.log1p(math.exp(-abs(a))))
        return interpolate(log_alpha, self.rev_log_alpha, self.rev_t)


# ---------------------------------------------------------------------------------------
# DPM-Solver(++) singlestep, data-prediction form (Lu et al. 2022, arXiv 2211.01095).
# ---------------------------------------------------------------------------------------


class DPMSolver:
    def __init__(self, model_fn: Callable[[Tensor, float], Tensor], noise_schedule: NoiseScheduleVP):
        self.model = model_fn
        self.ns = noise_schedule
        self.calls = 0

    def data_prediction_fn(self, x: Tensor, t: float) -> Tensor:
        noise = self.model(x, t)
        self.calls += 1
        return (x - self.ns.marginal_std(t) * noise) / self.ns.marginal_alpha(t)

    def get_time_steps(self, skip_type: str, t_T: float, t_0: float, n: int) -> List[float]:
        if skip_type == "time_uniform":
            ts = [t_T + (t_0 - t_T) * i / n for i in range(n + 1)]
        elif skip_type == "logSNR":
            l_T, l_0 = self.ns.marginal_lambda(t_T), self.ns.marginal_lambda(t_0)
            ts = [self.ns.inverse_lambda(l_T + (l_0 - l_T) * i / n) for i in range(n + 1)]
        else:
            raise ValueError(f"unknown skip_type {skip_type}")
        ts[0], ts[-1] = t_T, t_0
        return ts

    def get_orders_and_timesteps_for_singlestep_solver(self, steps: int, order: int, skip_type: str,
                                                        t_T: float, t_0: float):
        if order == 3:
            k = steps // 3 + 1
            if steps % 3 == 0:
                orders = [3] * (k - 2) + [2, 1]
            elif steps % 3 == 1:
                orders = [3] * (k - 1) + [1]
            else:
                orders = [3] * (k - 1) + [2]
        elif order == 2:
            orders = [2] * (steps // 2) + ([1] if steps % 2 else [])
        else:
            orders = [1] * steps
        grid = self.get_time_steps(skip_type, t_T, t_0, steps)
        outer = [grid[sum(orders[:i])] for i in range(len(orders) + 1)]
        return grid, outer, orders

    def first_update(self, x: Tensor, s: float, t: float, d_s: Tensor) -> Tensor:
        ns = self.ns
        h = ns.marginal_lambda(t) - ns.marginal_lambda(s)
        phi_1 = math.expm1(-h)
        return (ns.marginal_std(t) / ns.marginal_std(s)) * x - (ns.marginal_alpha(t) * phi_1) * d_s

    def second_update(self, x: Tensor, s: float, t: float, r1: float, d_s: Tensor) -> Tensor:
        ns = self.ns
        lambda_s = ns.marginal_lambda(s)
        h = ns.marginal_lambda(t) - lambda_s
        sigma_s, sigma_t, alpha_t = ns.marginal_std(s), ns.marginal_std(t), ns.marginal_alpha(t)
        phi_1 = math.expm1(-h)
        s1 = ns.inverse_lambda(lambda_s + r1 * h)
        sigma_s1, alpha_s1 = ns.marginal_std(s1), ns.marginal_alpha(s1)
        x_s1 = (sigma_s1 / sigma_s) * x - (alpha_s1 * math.expm1(-r1 * h)) * d_s
        d_s1 = self.data_prediction_fn(x_s1, s1)
        return ((sigma_t / sigma_s) * x - (alpha_t * phi_1) * d_s
                - (0.5 / r1) * (alpha_t * phi_1) * (d_s1 - d_s))

    def third_update(self, x: Tensor, s: float, t: float, r1: float, r2: float, d_s: Tensor) -> Tensor:
        ns = self.ns
        lambda_s = ns.marginal_lambda(s)
        h = ns.marginal_lambda(t) - lambda_s
        sigma_s, sigma_t, alpha_t = ns.marginal_std(s), ns.marginal_std(t), ns.marginal_alpha(t)
        phi_1 = math.expm1(-h)
        s1 = ns.inverse_lambda(lambda_s + r1 * h)
        sigma_s1, alpha_s1 = ns.marginal_std(s1), ns.marginal_alpha(s1)
        x_s1 = (sigma_s1 / sigma_s) * x - (alpha_s1 * math.expm1(-r1 * h)) * d_s
        d_s1 = self.data_prediction_fn(x_s1, s1)
        s2 = ns.inverse_lambda(lambda_s + r2 * h)
        sigma_s2, alpha_s2 = ns.marginal_std(s2), ns.marginal_alpha(s2)
        phi_12 = math.expm1(-r2 * h)
        phi_22 = phi_12 / (r2 * h) + 1.0
        phi_2 = phi_1 / h + 1.0
        x_s2 = ((sigma_s2 / sigma_s) * x - (alpha_s2 * phi_12) * d_s
                + (r2 / r1) * (alpha_s2 * phi_22) * (d_s1 - d_s))
        d_s2 = self.data_prediction_fn(x_s2, s2)
        return ((sigma_t / sigma_s) * x - (alpha_t * phi_1) * d_s
                + (1.0 / r2) * (alpha_t * phi_2) * (d_s2 - d_s))

    def singlestep_update(self, x: Tensor, s: float, t: float, order: int,
                          r1: Optional[float], r2: Optional[float]) -> Tensor:
        d_s = self.data_prediction_fn(x, s)
        if order == 1:
            return self.first_update(x, s, t, d_s)
        if order == 2:
            return self.second_update(x, s, t, r1, d_s)
        return self.third_update(x, s, t, r1, r2, d_s)

    def sample(self, x: Tensor, steps: int, order: int = 3, skip_type: str = "time_uniform") -> Tensor:
        t_T, t_0 = 1.0, 1.0 / self.ns.total_n
        grid, outer, orders = self.get_orders_and_timesteps_for_singlestep_solver(
            steps, order, skip_type, t_T, t_0)
        i = 0
        for step, order_k in enumerate(orders):
            s, t = outer[step], outer[step + 1]
            inner = grid[i:i + order_k + 1]  # the grid points the step spans
            lambda_inner = [self.ns.marginal_lambda(u) for u in inner]
            h = lambda_inner[-1] - lambda_inner[0]
            r1 = None if order_k <= 1 else (lambda_inner[1] - lambda_inner[0]) / h
            r2 = None if order_k <= 2 else (lambda_inner[2] - lambda_inner[0]) / h
            x = self.singlestep_update(x, s, t, order_k, r1, r2)
            i += order_k
        return x


# ---------------------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------------------


class Pipeline:
    def __init__(self, models_dir: str, device: str, precision: str, autocast: bool):
        with open(os.path.join(models_dir, "copgen.json"), encoding="utf-8") as f:
            self.manifest = json.load(f)
        m = self.manifest
        self.device = torch.device(device)
        self.dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self.autocast = autocast and self.dtype != torch.float32
        module_dtype = torch.float32 if self.autocast else self.dtype
        self.backbone = torch.jit.load(os.path.join(models_dir, m["backbone"]["file"]), map_location="cpu")
        self.autoencoder = torch.jit.load(os.path.join(models_dir, m["autoencoder"]["file"]), map_location="cpu")
        for mod in (self.backbone, self.autoencoder):
            mod.eval()
            mod.to(self.device, module_dtype)
        self.input_dtype = module_dtype
        sch = m["schedule"]
        self.ns = NoiseScheduleVP(sch["beta_start"], sch["beta_end"], sch["num_timesteps"])
        self.n = sch["num_timesteps"]
        self.c, self.h = m["latent_shape"][0], m["latent_shape"][1]
        self.scale = m["scale_factor"]
        self.image_size = m["image_size"]

    def _ctx(self):
        if self.autocast:
            return torch.autocast(device_type=self.device.type, dtype=self.dtype)
        return torch.autocast(device_type=self.device.type, enabled=False)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def nnet(self, z: Tensor, t: Tensor) -> Tensor:
        with self._ctx():
            out = self.backbone(z.to(self.device, self.input_dtype), t.to(self.device, torch.float32))
        return out.float()

    def encode_moments(self, x: Tensor) -> Tensor:
        with self._ctx():
            out = self.autoencoder.encode_moments(x.to(self.device, self.input_dtype))
        return out.float()

    def decode(self, z: Tensor) -> Tensor:
        with self._ctx():
            out = self.autoencoder.decode(z.to(self.device, self.input_dtype))
        return out.float()

    def translate(self, tiles: Tensor, steps: int, seed: int):
        """S2L1C uint8 tiles [B, 3, S, S] -> (S2L2A uint8 [B, 3, S, S], latents by modality)."""
        b = tiles.shape[0]
        shape = (b, self.c, self.h, self.h)
        # encode (in chunks of 8, as copgen does)
        x = tiles.to(torch.float32) / 255.0 * 2.0 - 1.0
        moments = torch.cat([self.encode_moments(x[i:i + 8]).cpu() for i in range(0, b, 8)], 0)
        # draws, in copgen's documented order
        gen = torch.Generator().manual_seed(seed)
        x_T = torch.randn((len(GENERATED),) + shape, generator=gen, dtype=torch.float32)
        eps = torch.randn(shape, generator=gen, dtype=torch.float32)
        unused = [m for m in MODALITIES if m not in GIVEN and m not in GENERATED]
        unused_noise = {m: torch.randn(shape, generator=gen, dtype=torch.float32).to(self.device) for m in unused}
        mean, logvar = moments[:, :self.c], moments[:, self.c:]
        given_latent = (self.scale * (mean + torch.exp(0.5 * torch.clamp(logvar, -30.0, 20.0)) * eps)).to(self.device)
        n = float(self.n)

        def joint_noise_fn(xg: Tensor, t_cont: float) -> Tensor:
            zs, ts = [], []
            for m in MODALITIES:
                if m in GENERATED:
                    zs.append(xg[GENERATED.index(m)])
                    ts.append(t_cont * n)
                elif m in GIVEN:
                    zs.append(given_latent)
                    ts.append(0.0)
                else:
                    zs.append(unused_noise[m])
                    ts.append(n)
            z_all = torch.stack(zs, 1)
            t_all = torch.tensor(ts, dtype=torch.float32).unsqueeze(0).expand(b, len(MODALITIES)).contiguous()
            eps_all = self.nnet(z_all, t_all)
            return torch.stack([eps_all[:, MODALITIES.index(m)] for m in GENERATED], 0)

        solver = DPMSolver(joint_noise_fn, self.ns)
        x_0 = solver.sample(x_T.to(self.device), steps=steps, order=3, skip_type="time_uniform")
        if not bool(torch.isfinite(x_0).all()):
            raise RuntimeError("the network produced NaN or infinite values")
        y = self.decode(x_0[0])
        pixels = torch.floor(torch.clamp((y + 1.0) / 2.0, 0.0, 1.0) * 255.0 + 0.5).to(torch.uint8).cpu()
        latents = {"S2L1C": given_latent.cpu(), "S2L2A": x_0[0].cpu()}
        return pixels, latents, solver.calls


def synthetic_tiles(b: int, size: int) -> Tensor:
    """copgen's synthetic_tiles: (x (1 + c) + y (2 + k mod 3) + 37 k + 85 c) mod 256."""
    k = torch.arange(b, dtype=torch.int64).view(b, 1, 1, 1)
    c = torch.arange(3, dtype=torch.int64).view(1, 3, 1, 1)
    y = torch.arange(size, dtype=torch.int64).view(1, 1, size, 1)
    x = torch.arange(size, dtype=torch.int64).view(1, 1, 1, size)
    v = x * (1 + c) + y * (2 + torch.remainder(k, 3)) + 37 * k + 85 * c
    return torch.remainder(v, 256).to(torch.uint8).contiguous()


def read_tiles(path: str) -> Tensor:
    import numpy as np  # only needed for --tiles
    a = np.load(path)
    if a.ndim != 4 or a.shape[1] != 3:
        raise SystemExit(f"reference_pipeline.py: --tiles '{path}': expected [N, 3, H, W], found {list(a.shape)}")
    return torch.from_numpy(a.astype("float32")).round().clamp(0, 255).to(torch.uint8)


def save_npy(path: str, t: Tensor) -> None:
    import numpy as np
    np.save(path, t.detach().cpu().float().numpy())


def peak_rss_bytes() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


def reset_peak_rss() -> None:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        pass


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", required=True, help="models directory (copgen.json + TorchScript files)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--precision", default=None, choices=["fp32", "bf16", "fp16"], help="default fp32")
    p.add_argument("--autocast", action="store_true",
                   help="run reduced precision under torch.autocast (as the reference code does) "
                        "instead of casting the modules")
    p.add_argument("--batch-sizes", default=None, help="comma-separated samples per network call (default 1)")
    p.add_argument("--reference-settings", action="store_true",
                   help="COP-GEN-Beta's own sampling settings: batches of 6 and, on CUDA, fp16 under "
                        "torch.autocast (the CPU keeps --precision); excludes --batch-sizes, and on CUDA "
                        "--precision and --autocast")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls before timing")
    p.add_argument("--repeat", type=int, default=3, help="timed network calls per batch size")
    p.add_argument("--steps", type=int, default=50, help="solver calls of the end-to-end translation")
    p.add_argument("--no-end-to-end", action="store_true", help="time network calls only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--tiles", help=".npy of S2L1C tiles [N, 3, S, S] (pixel values); default: synthetic")
    p.add_argument("--save-latents", metavar="DIR",
                   help="write the end-to-end run's latents (S2L1C.npy, S2L2A.npy) and S2L2A_pixels.npy "
                        "of the first batch size into DIR")
    p.add_argument("--json", help="also write the JSON to this file")
    a = p.parse_args(argv)
    if a.reference_settings:
        if a.batch_sizes is not None:
            p.error("--batch-sizes cannot be combined with --reference-settings (batches of 6)")
        a.batch_sizes = "6"
        if a.device.startswith("cuda"):
            if a.precision is not None or a.autocast:
                p.error("--precision/--autocast cannot be combined with --reference-settings on CUDA "
                        "(fp16 under torch.autocast)")
            a.precision, a.autocast = "fp16", True
    if a.precision is None:
        a.precision = "fp32"
    if a.batch_sizes is None:
        a.batch_sizes = "1"
    try:
        a.batch_sizes = [int(v) for v in a.batch_sizes.split(",") if v]
    except ValueError:
        p.error(f"--batch-sizes: expected comma-separated integers, got '{a.batch_sizes}'")
    if not a.batch_sizes or min(a.batch_sizes) < 1:
        p.error("--batch-sizes: every batch size must be at least 1")
    if a.repeat < 1 or a.warmup < 0 or a.steps < 1:
        p.error("--repeat and --steps must be at least 1, --warmup at least 0")
    return a


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    pipe = Pipeline(a.models, a.device, a.precision, a.autocast)
    m = pipe.manifest
    num_mod = m["backbone"]["num_modalities"]
    tiles_all = read_tiles(a.tiles) if a.tiles else synthetic_tiles(max(a.batch_sizes), pipe.image_size)
    if not a.no_end_to_end and tiles_all.shape[0] < max(a.batch_sizes):
        raise SystemExit(f"reference_pipeline.py: --tiles has {tiles_all.shape[0]} tiles, "
                         f"fewer than the largest batch size {max(a.batch_sizes)}")
    results = []
    with torch.inference_mode():
        for idx, b in enumerate(a.batch_sizes):
            reset_peak_rss()
            if pipe.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(pipe.device)
            gen = torch.Generator().manual_seed(a.seed)
            z = torch.randn((b, num_mod, pipe.c, pipe.h, pipe.h), generator=gen).to(pipe.device)
            t = (torch.rand((b, num_mod), generator=gen) * pipe.n).to(pipe.device)
            for _ in range(a.warmup):
                pipe.nnet(z, t)
            pipe.sync()
            cpu = time.process_time()
            start = time.perf_counter()
            for _ in range(a.repeat):
                pipe.nnet(z, t)
            pipe.sync()
            secs = time.perf_counter() - start
            r = {"batch_size": b, "timed_calls": a.repeat, "seconds_per_call": secs / a.repeat,
                 "cpu_seconds_per_call": (time.process_time() - cpu) / a.repeat,
                 "calls_per_s": a.repeat / secs}
            if not a.no_end_to_end:
                tiles = tiles_all[:b]
                pipe.translate(tiles, 1, a.seed)  # warm-up of the whole path, one step
                pipe.sync()
                cpu = time.process_time()
                start = time.perf_counter()
                pixels, latents, calls = pipe.translate(tiles, a.steps, a.seed)
                pipe.sync()
                secs = time.perf_counter() - start
                r.update({"e2e_steps": a.steps, "e2e_network_calls": calls, "e2e_seconds": secs,
                          "e2e_cpu_seconds": time.process_time() - cpu, "tuples_per_s": b / secs})
                if a.save_latents and idx == 0:
                    os.makedirs(a.save_latents, exist_ok=True)
                    for name, lat in latents.items():
                        save_npy(os.path.join(a.save_latents, f"{name}.npy"), lat)
                    save_npy(os.path.join(a.save_latents, "S2L2A_pixels.npy"), pixels)
            r["peak_host_rss_bytes"] = peak_rss_bytes()
            if pipe.device.type == "cuda":
                r["peak_device_bytes"] = torch.cuda.max_memory_reserved(pipe.device)
                r["peak_device_allocated_bytes"] = torch.cuda.max_memory_allocated(pipe.device)
            log(f"batch {b}: {r['seconds_per_call']:.4g} s/call"
                + (f", {r['tuples_per_s']:.4g} tuples/s end to end" if "tuples_per_s" in r else ""))
            results.append(r)
    out = {"pipeline": "reference", "torch": torch.__version__, "device": str(pipe.device),
           "precision": a.precision, "autocast": pipe.autocast, "threads": torch.get_num_threads(),
           "settings": "reference" if a.reference_settings else "copgen",
           "models": os.path.abspath(a.models), "steps": a.steps, "seed": a.seed, "results": results}
    text = json.dumps(out, indent=2)
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
