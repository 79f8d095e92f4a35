#!/usr/bin/env python3
"""copgen's GPU verification in one call (run through scripts/gpu/gpu_check.sh).

    gpu_check.sh --prepare DIR [--build build-cuda]   # dev machine: bundle what the GPU machine lacks
    gpu_check.sh --run DIR                            # GPU machine, from the repository root
    gpu_check.sh --run DIR --cpu                      # the same on the CPU, tiny models (CI: gpu_root.sh)
    gpu_check.sh --dry-run [--build build]            # any machine: every step on the CPU, tiny models

--prepare copies the copgen binary and the GPU test binary of a build (against CUDA
LibTorch 2.11 for --run) and every shared library they need except LibTorch, CUDA and the
C library (found with ldd) plus PROJ's and GDAL's data into one xz archive, DIR/bundle.tar.xz,
and fails when DIR exceeds 64 MiB (what the GPU machine may be given).

--run (GPU machine: python3 with CUDA torch, no GDAL, nothing of copgen's installed)
unpacks the bundle, points LD_LIBRARY_PATH at the machine's pip torch (torch/lib and its
nvidia/*/lib) and the bundle, exports full-size random models with sdpa attention (and
tiny ones for the GPU tests) with scripts/models/export_models.py, and runs the steps below, each
within its budget (RUN_BUDGETS), all within --time-limit seconds from the start, unpacking
included (default 480; a step with too little time left is skipped, never started late):

  environment     unpack the bundle; torch, CUDA, the GPU and its compute capability
  libraries       ldd of each bundled binary: every library from the bundle, the pip torch
                  or the C library (C_LIBRARY), none missing, none from elsewhere
  export          full-size random models (sdpa), tiny models for the tests
  gpu_tests       copgen_gpu_tests (the ctest -L gpu tests)
  translate       the demo tile: cuda fp32 and bf16 against cpu fp32 (max abs difference of the
                  latents and of the 8-bit output pixels)
  cuda_graphs     cuda with --cuda-graphs on against off (bit-identical or the difference)
  ae_precision    the autoencoder's decoded pixels in bf16/fp16 against fp32, grey levels
  bench           copgen bench --devices cuda --precisions fp32,bf16 --batch-sizes 1,8,32
                  --peak-tflops 989 --compare-reference

writing OUT/gpu_check.json (every step, its status ok/failed/skipped, seconds and figures)
and OUT/gpu_check.log (every command and its output); OUT is $OUT, else ./gpu-check-out.
The JSON is rewritten (temporary file, then rename) after each step with status "running",
at the end "ok" or "failed", on SIGTERM "interrupted": a call cut short keeps what ran.
--run DIR --cpu does all of --run with the CPU as the device and tiny models (as --dry-run):
scripts/gpu/gpu_root.sh runs it in CI inside a root file system like the GPU machine's.
--dry-run does the same steps with the given build on the CPU (tiny models, fp32 and
bf16, fewer steps and batch sizes) so that CI checks the script itself.
"""

import argparse
import glob
import json
import os
import platform
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUNDLE_LIMIT = 64 * 1024 * 1024
BINARIES = ["copgen", "tests/copgen_gpu_tests"]
# Never bundled: LibTorch and CUDA come from the GPU machine's pip torch, the C library
# from its system. libstdc++/libgcc_s go to a fallback directory used only when the
# system's are too old for the binaries.
SKIP_PREFIXES = ("libtorch", "libc10", "libcuda", "libcudart", "libcublas", "libcudnn", "libnvrtc", "libnvJitLink",
                 "libcufft", "libcurand", "libcusparse", "libcusolver", "libnccl", "libnvToolsExt", "libcupti",
                 "libgomp", "libshm", "libcaffe2", "libnvshmem", "libcufile")
SYSTEM_LIBS = ("libc.so", "libm.so", "libdl.so", "libpthread.so", "librt.so", "libresolv.so", "ld-linux",
               "libutil.so", "libanl.so", "linux-vdso")
FALLBACK_LIBS = ("libstdc++.so", "libgcc_s.so")
# What the `libraries` step accepts from the system: glibc's libraries (Debian's libc6) and
# GCC's runtime (libgcc-s1, libstdc++6), by soname prefix, in the system's library
# directories (resolved links). Everything else must come from the bundle or the pip torch.
C_LIBRARY = ("libc.so.", "libm.so.", "libmvec.so.", "libdl.so.", "libpthread.so.", "librt.so.", "libresolv.so.",
             "libutil.so.", "libanl.so.", "ld-linux-x86-64.so.", "ld-linux-aarch64.so.", "libgcc_s.so.",
             "libstdc++.so.")
C_LIBRARY_DIRS = {os.path.realpath(d) for d in ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/lib/x86_64-linux-gnu",
                                                "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
                                                "/usr/lib/aarch64-linux-gnu")}


class Checker:
    """Runs the steps in order within one time limit and writes the JSON summary after each
    one (a temporary file renamed over gpu_check.json), so that a run cut short still leaves
    every finished step on disk."""

    RESERVE = 10.0  # seconds kept after the last step: the summary, removing the work directory

    def __init__(self, out_dir: str, time_limit: float, mode: str = "", extra=None):
        self.out = os.path.abspath(out_dir)
        os.makedirs(self.out, exist_ok=True)
        self.log_path = os.path.join(self.out, "gpu_check.log")
        self.log_file = open(self.log_path, "w", encoding="utf-8")
        self.start = time.monotonic()
        self.deadline = self.start + time_limit
        self.step_deadline = float("inf")
        self.steps = []
        self.env = dict(os.environ)
        self.mode = mode
        self.extra = extra if extra is not None else {}
        self.current = None
        self.proc = None
        # test hook (tests/python/test_gpu_check.py): SIGKILL this process right after the
        # summary of the N-th step is written, as a call cut short would
        self.kill_after = int(os.environ.get("COPGEN_GPU_CHECK_KILL_AFTER_STEP", "0") or 0)

    def log(self, msg: str) -> None:
        line = f"[gpu_check {time.monotonic() - self.start:6.1f}s] {msg}"
        print(line, file=sys.stderr, flush=True)
        self.log_file.write(line + "\n")
        self.log_file.flush()

    def left(self) -> float:
        """Seconds the running step may still use: its own budget, and the whole run's
        time limit less RESERVE."""
        return min(self.deadline - self.RESERVE, self.step_deadline) - time.monotonic()

    def sh(self, args, timeout: float, env=None, check=True) -> subprocess.CompletedProcess:
        """Runs args (a list), logging the command and its output; raises on failure."""
        timeout = max(1.0, min(timeout, self.left()))
        self.log("$ " + " ".join(shlex.quote(str(a)) for a in args))
        with subprocess.Popen([str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env=env or self.env, cwd=ROOT) as proc:
            self.proc = proc  # on_sigterm stops it
            try:
                stdout, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, _ = proc.communicate()
                self.log_file.write((stdout or b"").decode("utf-8", "replace"))
                raise RuntimeError(f"timed out after {timeout:.0f} s: {args[0]}")
            finally:
                self.proc = None
        r = subprocess.CompletedProcess(proc.args, proc.returncode, stdout)
        out = r.stdout.decode("utf-8", "replace")
        self.log_file.write(out + ("" if out.endswith("\n") else "\n"))
        self.log_file.flush()
        if check and r.returncode != 0:
            tail = "\n".join(out.strip().splitlines()[-8:])
            raise RuntimeError(f"exit {r.returncode}: {os.path.basename(str(args[0]))}: {tail}")
        r.text = out
        return r

    def step(self, name: str, fn, min_seconds: float = 5.0, budget: float = float("inf")) -> dict:
        """Runs fn as step `name` when at least min_seconds of the time limit are left (else
        records it as skipped), its commands within `budget` seconds; then writes the summary."""
        rec = {"name": name, "status": "ok", "seconds": 0.0}
        left = self.deadline - self.RESERVE - time.monotonic()
        if left < min_seconds:
            rec["status"] = "skipped"
            rec["reason"] = f"out of time ({max(left, 0):.0f} s left, the step needs {min_seconds:.0f})"
            self.log(f"step {name}: skipped, out of time")
        else:
            self.log(f"step {name}: start (budget {min(budget, left):.0f} s)")
            t0 = time.monotonic()
            self.step_deadline = t0 + budget
            self.current = (name, t0)
            try:
                details = fn()
                if details:
                    rec["details"] = details
            except Exception as e:  # a step's failure is reported, the next steps still run
                rec["status"] = "failed"
                rec["error"] = str(e)[-2000:]
            self.step_deadline = float("inf")
            self.current = None
            rec["seconds"] = round(time.monotonic() - t0, 2)
            self.log(f"step {name}: {rec['status']} in {rec['seconds']} s" +
                     (f" ({rec.get('error')})" if rec["status"] != "ok" else ""))
        self.steps.append(rec)
        self.write_summary(final=False)
        if self.kill_after and len(self.steps) == self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return rec

    def summary(self, final: bool) -> dict:
        if final:
            status = "ok" if self.steps and all(s["status"] == "ok" for s in self.steps) else "failed"
        else:
            status = "running"  # what a call cut short leaves: the steps that finished
        s = {"mode": self.mode, "status": status, "seconds": round(time.monotonic() - self.start, 1),
             "steps": self.steps, "log": self.log_path}
        s.update(self.extra)
        return s

    def write_summary(self, final: bool = True, interrupted: str = "") -> dict:
        summary = self.summary(final)
        if interrupted:
            summary["status"] = "interrupted"
            summary["interrupted"] = interrupted
        path = os.path.join(self.out, "gpu_check.json")
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        if final or interrupted:
            self.log(f"wrote {path}: {summary['status']}")
        return summary

    def on_sigterm(self, signum, frame):
        """A timeout's SIGTERM: stop the command in progress, record its step as interrupted, exit."""
        if self.proc is not None:
            try:
                self.proc.kill()
            except OSError:
                pass
        what = f"signal {signum}"
        if self.current:
            name, t0 = self.current
            self.steps.append({"name": name, "status": "interrupted", "seconds": round(time.monotonic() - t0, 2)})
            what += f" during step {name}"
        self.write_summary(final=False, interrupted=what)
        os._exit(128 + signum)


# ---- reading outputs without numpy or GDAL ----------------------------------------------

def read_npy(path: str):
    """(shape, list of floats) of a little-endian float32/float64 .npy."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        raise ValueError(f"{path}: not a .npy file")
    major = data[6]
    hlen = struct.unpack("<H", data[8:10])[0] if major == 1 else struct.unpack("<I", data[8:12])[0]
    start = 10 if major == 1 else 12
    header = eval(data[start:start + hlen].decode("latin1"))  # a Python dict literal by the format's definition
    code = {"<f4": "f", "<f8": "d"}[header["descr"]]
    n = 1
    for d in header["shape"]:
        n *= d
    values = struct.unpack(f"<{n}{code}", data[start + hlen:start + hlen + n * struct.calcsize(code)])
    return tuple(header["shape"]), values


def read_tiff_bytes(path: str) -> bytes:
    """The pixel bytes of a stripped or tiled, uncompressed or DEFLATE, 8-bit GeoTIFF
    (what copgen writes), in file order."""
    with open(path, "rb") as f:
        data = f.read()
    bo = {b"II": "<", b"MM": ">"}[data[:2]]
    magic = struct.unpack(bo + "H", data[2:4])[0]
    if magic == 43:  # BigTIFF
        off = struct.unpack(bo + "Q", data[8:16])[0]
        n = struct.unpack(bo + "Q", data[off:off + 8])[0]
        entry, pos, cnt_fmt, val_size = 20, off + 8, "Q", 8
    else:
        off = struct.unpack(bo + "I", data[4:8])[0]
        n = struct.unpack(bo + "H", data[off:off + 2])[0]
        entry, pos, cnt_fmt, val_size = 12, off + 2, "I", 4
    sizes = {1: 1, 2: 1, 3: 2, 4: 4, 16: 8}
    fmts = {1: "B", 2: "B", 3: "H", 4: "I", 16: "Q"}
    tags = {}
    for i in range(n):
        e = data[pos + i * entry:pos + (i + 1) * entry]
        tag, typ = struct.unpack(bo + "HH", e[:4])
        count = struct.unpack(bo + cnt_fmt, e[4:4 + struct.calcsize(cnt_fmt)])[0]
        if typ not in sizes:
            continue
        size = sizes[typ] * count
        raw = e[4 + struct.calcsize(cnt_fmt):]
        if size > val_size:
            p = struct.unpack(bo + cnt_fmt, raw[:val_size])[0]
            raw = data[p:p + size]
        tags[tag] = struct.unpack(bo + fmts[typ] * count, raw[:size])
    compression = tags.get(259, (1,))[0]
    offsets = tags.get(273) or tags.get(324)
    counts = tags.get(279) or tags.get(325)
    out = bytearray()
    for o, c in zip(offsets, counts):
        chunk = data[o:o + c]
        out += zlib.decompress(chunk) if compression in (8, 32946) else chunk
    return bytes(out)


def max_abs_diff(a, b) -> float:
    if len(a) != len(b):
        raise ValueError(f"sizes differ: {len(a)} and {len(b)}")
    return max((abs(x - y) for x, y in zip(a, b)), default=0.0)


# ---- --prepare ----------------------------------------------------------------------------

def needed_libs(binaries):
    libs = {}
    for b in binaries:
        out = subprocess.run(["ldd", b], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=True).stdout.decode()
        for line in out.splitlines():
            parts = line.split("=>")
            if len(parts) != 2:
                continue
            name = parts[0].strip()
            target = parts[1].strip().split(" (")[0].strip()
            if target == "not found":
                if name.startswith(SKIP_PREFIXES):
                    continue
                raise RuntimeError(f"{b}: ldd cannot find {name}")
            if not target or name.startswith(SKIP_PREFIXES) or name.startswith(SYSTEM_LIBS):
                continue
            if "/site-packages/" in target or "/torch/lib/" in target:
                continue  # LibTorch's own dependencies: the GPU machine's pip torch brings them
            libs[name] = target
    return libs


def prepare(bundle: str, build: str) -> int:
    build = os.path.abspath(build)
    bins = [os.path.join(build, b) for b in BINARIES]
    for b in bins:
        if not os.path.isfile(b):
            raise SystemExit(f"gpu_check --prepare: {b} is missing; build with -DCOPGEN_BUILD_TESTS=ON first")
    os.makedirs(bundle, exist_ok=True)
    libs = needed_libs(bins)
    archive = os.path.join(bundle, "bundle.tar.xz")
    members = []
    stripped = tempfile.mkdtemp(prefix="copgen-bundle-")
    with tarfile.open(archive, "w:xz", preset=6) as tar:
        for b in bins:
            small = os.path.join(stripped, os.path.basename(b))
            if subprocess.run(["strip", "--strip-unneeded", "-o", small, b]).returncode != 0:
                shutil.copy2(b, small)
            tar.add(small, arcname="bin/" + os.path.basename(b))
            members.append("bin/" + os.path.basename(b))
        for name, path in sorted(libs.items()):
            sub = "lib-fallback" if name.startswith(FALLBACK_LIBS) else "lib"
            tar.add(os.path.realpath(path), arcname=f"{sub}/{name}")
            members.append(f"{sub}/{name}")
        for src, arc in (("/usr/share/proj/proj.db", "share/proj/proj.db"), ("/usr/share/gdal", "share/gdal")):
            if os.path.exists(src):
                tar.add(src, arcname=arc)
                members.append(arc)
    shutil.rmtree(stripped, ignore_errors=True)
    torch_version = ""
    cache = os.path.join(build, "CMakeCache.txt")
    if os.path.isfile(cache):
        for line in open(cache, encoding="utf-8", errors="replace"):
            if line.startswith(("Torch_DIR:", "CMAKE_PREFIX_PATH:")):
                torch_version += line.strip() + " "
    meta = {"build": build, "made": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": platform.node(),
            "glibc": platform.libc_ver()[1], "torch_build": torch_version.strip(), "members": members}
    with open(os.path.join(bundle, "bundle.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)
    total = sum(os.path.getsize(p) for p in glob.glob(os.path.join(bundle, "**"), recursive=True) if os.path.isfile(p))
    print(f"gpu_check --prepare: {bundle}: {len(libs)} libraries, {total / 2**20:.1f} MiB", file=sys.stderr)
    if total > BUNDLE_LIMIT:
        print(f"gpu_check --prepare: the bundle is over 64 MiB ({total / 2**20:.1f} MiB)", file=sys.stderr)
        return 1
    return 0


# ---- --run and --dry-run ------------------------------------------------------------------

def torch_lib_dirs(python: str):
    code = ("import torch, os, glob; d = os.path.dirname(torch.__file__); sp = os.path.dirname(d); "
            "print('\\n'.join([os.path.join(d, 'lib')] + sorted(glob.glob(os.path.join(sp, 'nvidia', '*', 'lib'))) "
            "+ sorted(glob.glob(os.path.join(sp, 'nvidia', 'cu*', 'lib')))))")
    out = subprocess.run([python, "-c", code], stdout=subprocess.PIPE, check=True).stdout.decode().split()
    return [d for i, d in enumerate(out) if os.path.isdir(d) and d not in out[:i]]


def classify_library(path: str, bundle_dir: str, torch_dirs) -> str:
    """Where a library ldd resolved comes from: "bundle", "torch" (the pip torch's torch/lib
    and nvidia/*/lib), "c-library" (glibc's and GCC's runtime from the system's /lib or
    /usr/lib), else "elsewhere"."""
    def under(p, d):
        return os.path.commonpath([p, d]) == d

    real = os.path.realpath(path)
    norm = os.path.normpath(path)
    for p in (norm, real):
        if under(p, os.path.realpath(bundle_dir)) or under(p, os.path.normpath(bundle_dir)):
            return "bundle"
        if any(under(p, os.path.normpath(d)) or under(p, os.path.realpath(d)) for d in torch_dirs):
            return "torch"
    name = os.path.basename(norm)
    if name.startswith(C_LIBRARY) and os.path.dirname(real) in C_LIBRARY_DIRS:
        return "c-library"
    return "elsewhere"


def check_libraries(ldd_outputs, bundle_dir: str, torch_dirs) -> dict:
    """The `libraries` step's verdict from {binary: ldd output}: every library resolved from
    the bundle, the pip torch or the C library; raises listing any other or any not found."""
    res = {"binaries": {}, "c_library": set(), "bad": []}
    for binary, out in ldd_outputs.items():
        counts = {"bundle": 0, "torch": 0, "c-library": 0}
        for line in out.splitlines():
            line = line.strip()
            if not line:
                continue
            if "not found" in line:
                res["bad"].append(f"{binary}: {line}")
                continue
            if "=>" in line:
                name, target = (x.strip() for x in line.split("=>", 1))
                target = target.split(" (")[0].strip()
            else:  # the dynamic loader itself and the vDSO: "path (address)"
                name = target = line.split(" (")[0].strip()
                if not target.startswith("/"):
                    continue  # linux-vdso.so.1: no file
            if not target.startswith("/"):
                res["bad"].append(f"{binary}: {line}")
                continue
            where = classify_library(target, bundle_dir, torch_dirs)
            if where == "elsewhere":
                res["bad"].append(f"{binary}: {name} => {target}")
            else:
                counts[where] += 1
                if where == "c-library":
                    res["c_library"].add(f"{name} => {target}")
        res["binaries"][binary] = counts
    if res["bad"]:
        raise RuntimeError("libraries from outside the bundle, the pip torch and the C library: " +
                           "; ".join(res["bad"]))
    del res["bad"]
    res["c_library"] = sorted(res["c_library"])
    return res


# Time budgets of --run's steps on the GPU machine, seconds: (min, budget). A step starts
# only with `min` seconds of the time limit left (else it is skipped), and its commands are
# stopped after `budget`; bench has the rest. The budgets before bench add up to 360 s, so
# bench keeps at least 110 s of --time-limit's default 480 less Checker.RESERVE (10 s).
# Measured on the 2-core build machine: unpacking the bundle 2.8 s, exporting the full-size
# random models 8.8 s; the CPU run in the GPU-like root: docs/performance.md.
RUN_BUDGETS = {"environment": (5, 60), "libraries": (5, 20), "export": (20, 90), "gpu_tests": (10, 60),
               "translate": (30, 60), "cuda_graphs": (30, 40), "ae_precision": (20, 30),
               "bench": (60, float("inf"))}


def run(args) -> int:
    dry = args.mode == "dry-run"
    cpu_run = args.mode == "run-cpu"
    tiny_models = dry or cpu_run
    py = args.python
    device = "cpu" if tiny_models else "cuda"
    work = tempfile.mkdtemp(prefix="copgen-gpu-check-")
    extra = {"device": device, "time_limit": args.time_limit, "work_dir": work}
    c = Checker(args.out, args.time_limit, args.mode, extra)
    signal.signal(signal.SIGTERM, c.on_sigterm)
    paths = {}

    def environment():
        info = c.sh([py, "-c", "import json, torch; ok = torch.cuda.is_available(); print(json.dumps({"
                     "'torch': torch.__version__, 'cuda': torch.version.cuda, 'cuda_available': ok, "
                     "'gpu': torch.cuda.get_device_name(0) if ok else None, "
                     "'capability': list(torch.cuda.get_device_capability(0)) if ok else None}))"], 60).text
        d = json.loads(info.strip().splitlines()[-1])
        if dry:
            paths["bin"] = os.path.abspath(args.build)
            paths["gpu_tests"] = os.path.join(paths["bin"], "tests", "copgen_gpu_tests")
            paths["copgen"] = os.path.join(paths["bin"], "copgen")
        else:
            if not cpu_run and not d["cuda_available"]:
                raise RuntimeError("python torch sees no CUDA device (--cpu runs the same steps on the CPU)")
            unpack = os.path.join(work, "bundle")
            archive = os.path.join(args.bundle, "bundle.tar.xz")
            if not os.path.isfile(archive):
                raise RuntimeError(f"{archive} is missing (gpu_check.sh --prepare {args.bundle})")
            t0 = time.monotonic()
            with tarfile.open(archive) as tar:
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(unpack, filter="tar")
                else:
                    tar.extractall(unpack)
            d["bundle_mib"] = round(os.path.getsize(archive) / 2**20, 1)
            d["unpack_seconds"] = round(time.monotonic() - t0, 2)
            paths["bundle"] = unpack
            paths["copgen"] = os.path.join(unpack, "bin", "copgen")
            paths["gpu_tests"] = os.path.join(unpack, "bin", "copgen_gpu_tests")
            paths["torch_dirs"] = torch_lib_dirs(py)
            lib = paths["torch_dirs"] + [os.path.join(unpack, "lib")]
            c.env["LD_LIBRARY_PATH"] = ":".join(lib + [p for p in [os.environ.get("LD_LIBRARY_PATH", "")] if p])
            missing = [l for l in c.sh(["ldd", paths["copgen"]], 30, check=False).text.splitlines()
                       if "not found" in l]
            if any(name in l for l in missing for name in FALLBACK_LIBS + ("GLIBCXX_", "GCC_", "CXXABI_")):
                c.log("system libstdc++/libgcc_s too old or missing: using the bundle's")
                c.env["LD_LIBRARY_PATH"] += ":" + os.path.join(unpack, "lib-fallback")
            if os.path.isdir(os.path.join(unpack, "share", "proj")):
                c.env["PROJ_DATA"] = c.env["PROJ_LIB"] = os.path.join(unpack, "share", "proj")
            if os.path.isdir(os.path.join(unpack, "share", "gdal")):
                c.env["GDAL_DATA"] = os.path.join(unpack, "share", "gdal")
            d["ld_library_path"] = c.env["LD_LIBRARY_PATH"]
        for b in (paths["copgen"], paths["gpu_tests"]):
            if not os.path.isfile(b):
                raise RuntimeError(f"{b} is missing")
        d["copgen_version"] = c.sh([paths["copgen"], "--version"], 30).text.strip().splitlines()[-1]
        # what `copgen info --json` says here: CUDA runtime and driver, cuDNN, each GPU and the
        # precision auto picks on it, GDAL's drivers, BLAS (the bug-report facts of this machine)
        info = c.sh([paths["copgen"], "info", "--json"], 60, check=False).text
        try:
            d["copgen_info"] = json.loads(info[info.index("{"):])
        except ValueError:
            d["copgen_info"] = None
        return d

    def libraries():
        # ldd of each bundled binary with the LD_LIBRARY_PATH the steps use
        outs = {os.path.basename(b): c.sh(["ldd", b], 30, check=False).text
                for b in sorted(glob.glob(os.path.join(paths["bundle"], "bin", "*")))}
        res = check_libraries(outs, paths["bundle"], paths["torch_dirs"])
        res["ld_library_path"] = c.env["LD_LIBRARY_PATH"]
        return res

    def export():
        full = os.path.join(work, "models-full" if not tiny_models else "models-tiny-run")
        tiny = os.path.join(work, "models-tiny")
        size = [] if not tiny_models else ["--tiny"]
        c.sh([py, "scripts/models/export_models.py", "--out", full, "--seed", "0", "--attention",
              "sdpa" if not tiny_models else "auto", "--quiet"] + size, 240)
        c.sh([py, "scripts/models/export_models.py", "--tiny", "--seed", "7", "--out", tiny, "--quiet"], 120)
        paths["models"], paths["tiny"] = full, tiny
        return {"models": full, "full_size": not tiny_models, "tiny": tiny}

    def gpu_tests():
        env = dict(c.env, COPGEN_TEST_MODELS=paths["tiny"])
        r = c.sh([paths["gpu_tests"]], 180, env=env)
        lines = [l for l in r.text.splitlines() if "test cases" in l or "All tests passed" in l]
        skipped = r.text.count("COPGEN_GPU_SKIP")
        if device == "cuda" and skipped:
            raise RuntimeError(f"{skipped} GPU test(s) skipped on a GPU machine")
        return {"summary": lines[-1] if lines else "", "skip_markers": skipped}

    steps = "3" if tiny_models else "10"

    done = {}

    def translate_once(tag, dev, precision, graphs="on"):
        if tag in done:
            return done[tag]
        out_dir = os.path.join(work, "translate", tag)
        os.makedirs(out_dir, exist_ok=True)
        c.sh([paths["copgen"], "translate", "--from", "S2L1C", "--to", "S2L2A", "-i", "demo/s2l1c_demo.tif",
              "-o", os.path.join(out_dir, "s2l2a.tif"), "--models", paths["models"], "--seed", "42", "--steps", steps,
              "--device", dev, "--precision", precision, "--cuda-graphs", graphs, "--save-latents", out_dir,
              "--overwrite", "-q"], 180)
        _, lat = read_npy(os.path.join(out_dir, "S2L2A.npy"))
        done[tag] = (lat, read_tiff_bytes(os.path.join(out_dir, "s2l2a.tif")))
        return done[tag]

    def compare(a, b):
        return {"latent_max_abs": max_abs_diff(a[0], b[0]), "pixel_max_abs_grey_levels": max_abs_diff(a[1], b[1]),
                "identical": a[0] == b[0] and a[1] == b[1]}

    def translate():
        ref = translate_once("cpu-fp32", "cpu", "fp32")
        res = {"steps": int(steps), "against": "cpu fp32"}
        for precision in ("fp32", "bf16"):
            res[f"{device}_{precision}"] = compare(translate_once(f"{device}-{precision}", device, precision), ref)
        return res

    def cuda_graphs():
        res = {}
        for precision in ("fp32", "bf16"):
            on = translate_once(f"{device}-{precision}", device, precision, "on")
            off = translate_once(f"{device}-{precision}-nographs", device, precision, "off")
            res[precision] = compare(on, off)
        return res

    def ae_precision():
        r = c.sh([py, "scripts/research/ae_precision.py", "--models", paths["models"], "--device", device, "--precisions",
                  "bf16" if tiny_models else "bf16,fp16", "--batch", "2" if tiny_models else "8"], 240)
        return json.loads(r.text[r.text.index("{"):])["results"]

    def bench():
        js = os.path.join(c.out, "bench.json")
        args_ = [paths["copgen"], "bench", "--models", paths["models"], "--devices", device, "--precisions",
                 "fp32,bf16", "--peak-tflops", "989", "--compare-reference", "--python", py, "--reference-script",
                 os.path.join(ROOT, "scripts", "research", "reference_pipeline.py"), "--json", js]
        if tiny_models:
            args_ += ["--batch-sizes", "1,2", "--steps", "2", "--repeat", "1", "--warmup", "0"]
        else:
            args_ += ["--batch-sizes", "1,8,32", "--steps", "20", "--repeat", "3"]
        c.sh(args_, c.left())
        with open(js, encoding="utf-8") as f:
            rows = json.load(f)["rows"]
        keep = ("device", "precision", "ae_precision", "batch_size", "cuda_graphs", "peak_device_bytes",
                "peak_device_allocated_bytes", "skipped")
        out = []
        for r in rows:
            o = {k: r[k] for k in keep if k in r}
            for k in ("seconds_per_call", "tflops", "mfu"):
                if k in r.get("network", {}):
                    o[k] = r["network"][k]
            if r.get("end_to_end"):
                o["tuples_per_s"] = r["end_to_end"]["tuples_per_s"]
            if r.get("speedup"):
                o["speedup_over_reference"] = r["speedup"]
            out.append(o)
        return {"json": js, "rows": out}

    def step(name, fn):
        # budgets bind the GPU run only: on the CPU (--cpu, --dry-run) the time limit alone
        low, budget = RUN_BUDGETS[name]
        return c.step(name, fn, low, budget if args.mode == "run" else float("inf"))

    env = step("environment", environment)
    if not dry and "torch_dirs" in paths:
        # also after a failed environment step, once the bundle is unpacked: ldd says why a
        # binary does not start
        step("libraries", libraries)
    if env["status"] == "ok":
        exp = step("export", export)
        if exp["status"] == "ok":
            step("gpu_tests", gpu_tests)
            step("translate", translate)
            step("cuda_graphs", cuda_graphs)
            step("ae_precision", ae_precision)
            step("bench", bench)
    summary = c.write_summary()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if summary["status"] == "ok" else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="gpu_check.sh", description=__doc__.split("\n\n")[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--prepare", metavar="DIR", help="write the bundle into DIR (dev machine)")
    g.add_argument("--run", metavar="DIR", help="run every check with the bundle in DIR (GPU machine)")
    g.add_argument("--dry-run", action="store_true", help="every step on the CPU with tiny models and --build")
    p.add_argument("--cpu", action="store_true",
                   help="with --run: every step on the CPU with tiny models, from the bundle (no GPU needed)")
    p.add_argument("--build", default=os.path.join(ROOT, "build"), help="build directory (default: build)")
    p.add_argument("--out", default=os.environ.get("OUT") or "gpu-check-out",
                   help="where gpu_check.json and gpu_check.log go (default: $OUT, else ./gpu-check-out)")
    p.add_argument("--python", default=sys.executable, help="python with torch (default: this one)")
    p.add_argument("--time-limit", type=float, default=480.0,
                   help="seconds for the whole run, unpacking included (default 480)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (models, outputs)")
    a = p.parse_args(argv)
    if a.prepare:
        return prepare(a.prepare, a.build)
    if a.cpu and not a.run:
        p.error("--cpu goes with --run DIR")
    if a.time_limit <= Checker.RESERVE:
        p.error(f"--time-limit must be more than {Checker.RESERVE:.0f} s")
    a.mode = "dry-run" if a.dry_run else ("run-cpu" if a.cpu else "run")
    a.bundle = a.run
    return run(a)


if __name__ == "__main__":
    sys.exit(main())
