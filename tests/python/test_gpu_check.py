"""scripts/gpu/gpu_check.py's bookkeeping, without a build or a GPU: the JSON summary after
each step (a run killed after step N leaves exactly N steps), the skip of a step with too
little time left, SIGTERM's "interrupted" summary, and the `libraries` step's verdict on
ldd outputs (ctest: python_export, label python)."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import unittest

ROOT = os.environ.get("COPGEN_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GPU_DIR = os.path.join(ROOT, "scripts", "gpu")
sys.path.insert(0, GPU_DIR)
import gpu_check  # noqa: E402

# A run of five steps through gpu_check.Checker, as gpu_check.run drives them; step "three"
# sends itself SIGTERM when asked (argv[3] == "term").
PROGRAM = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, sys.argv[1])
    import gpu_check
    c = gpu_check.Checker(sys.argv[2], 600, "run-cpu", {"device": "cpu"})
    signal.signal(signal.SIGTERM, c.on_sigterm)
    def three():
        if sys.argv[3] == "term":
            os.kill(os.getpid(), signal.SIGTERM)
        return {"n": 3}
    for name, fn in (("one", lambda: {"n": 1}), ("two", lambda: {"n": 2}), ("three", three),
                     ("four", lambda: {"n": 4}), ("five", lambda: {"n": 5})):
        c.step(name, fn)
    sys.exit(0 if c.write_summary()["status"] == "ok" else 1)
""")


def run_program(out: str, kill_after: int = 0, term: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("COPGEN_GPU_CHECK_KILL_AFTER_STEP", None)
    if kill_after:
        env["COPGEN_GPU_CHECK_KILL_AFTER_STEP"] = str(kill_after)
    return subprocess.run([sys.executable, "-c", PROGRAM, GPU_DIR, out, "term" if term else "no"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def summary(out: str) -> dict:
    with open(os.path.join(out, "gpu_check.json"), encoding="utf-8") as f:
        return json.load(f)


class SummaryAfterEachStep(unittest.TestCase):
    def test_a_run_killed_after_step_n_leaves_n_steps(self):
        for n in (1, 2, 4):
            with self.subTest(n=n), tempfile.TemporaryDirectory() as out:
                r = run_program(out, kill_after=n)
                self.assertEqual(r.returncode, -signal.SIGKILL)
                s = summary(out)
                self.assertEqual([st["name"] for st in s["steps"]], ["one", "two", "three", "four", "five"][:n])
                self.assertEqual([st["details"]["n"] for st in s["steps"]], list(range(1, n + 1)))
                self.assertTrue(all(st["status"] == "ok" for st in s["steps"]))
                self.assertEqual(s["status"], "running")
                self.assertEqual((s["mode"], s["device"]), ("run-cpu", "cpu"))
                self.assertEqual(sorted(os.listdir(out)), ["gpu_check.json", "gpu_check.log"])

    def test_a_finished_run_is_ok(self):
        with tempfile.TemporaryDirectory() as out:
            r = run_program(out)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            s = summary(out)
            self.assertEqual(s["status"], "ok")
            self.assertEqual(len(s["steps"]), 5)

    def test_sigterm_during_a_step_records_it_as_interrupted(self):
        with tempfile.TemporaryDirectory() as out:
            r = run_program(out, term=True)
            self.assertEqual(r.returncode, 128 + signal.SIGTERM)
            s = summary(out)
            self.assertEqual(s["status"], "interrupted")
            self.assertEqual(s["interrupted"], f"signal {int(signal.SIGTERM)} during step three")
            self.assertEqual([(st["name"], st["status"]) for st in s["steps"]],
                             [("one", "ok"), ("two", "ok"), ("three", "interrupted")])

    def test_a_step_without_enough_time_left_is_skipped_not_started(self):
        with tempfile.TemporaryDirectory() as out:
            c = gpu_check.Checker(out, gpu_check.Checker.RESERVE + 30, "run", {})
            ran = []
            c.step("fits", lambda: ran.append("fits"), min_seconds=5)
            rec = c.step("too_long", lambda: ran.append("too_long"), min_seconds=60)
            self.assertEqual(ran, ["fits"])
            self.assertEqual(rec["status"], "skipped")
            self.assertTrue(rec["reason"].startswith("out of time"))
            self.assertEqual([st["status"] for st in summary(out)["steps"]], ["ok", "skipped"])
            self.assertEqual(c.write_summary()["status"], "failed")
            c.log_file.close()

    def test_a_step_budget_bounds_its_commands(self):
        with tempfile.TemporaryDirectory() as out:
            c = gpu_check.Checker(out, 600, "run", {})
            seen = []
            c.step("budgeted", lambda: seen.append(c.left()), budget=20)
            self.assertLessEqual(seen[0], 20)
            self.assertGreater(c.left(), 500)  # the budget ends with its step
            c.log_file.close()


class LibrariesStep(unittest.TestCase):
    BUNDLE = "/w/tmp/copgen-gpu-check-x/bundle"
    TORCH = ["/opt/torch/.venv/lib/python3.11/site-packages/torch/lib",
             "/opt/torch/.venv/lib/python3.11/site-packages/nvidia/cu13/lib"]
    # a C library this machine has, where the test runs
    LIBC = next(p for p in ("/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6", "/lib64/libc.so.6")
                if os.path.exists(p))

    def ldd(self, *extra):
        lines = [
            "\tlinux-vdso.so.1 (0x00007ffd)",
            f"\tlibgdal.so.32 => {self.BUNDLE}/lib/libgdal.so.32 (0x00007f01)",
            f"\tlibtorch.so => {self.TORCH[0]}/libtorch.so (0x00007f02)",
            f"\tlibcublas.so.13 => {self.TORCH[0]}/../../nvidia/cu13/lib/libcublas.so.13 (0x00007f03)",
            f"\tlibc.so.6 => {self.LIBC} (0x00007f04)",
        ] + list(extra)
        return "\n".join(lines) + "\n"

    def test_bundle_torch_and_c_library_pass(self):
        res = gpu_check.check_libraries({"copgen": self.ldd()}, self.BUNDLE, self.TORCH)
        self.assertEqual(res["binaries"]["copgen"], {"bundle": 1, "torch": 2, "c-library": 1})
        self.assertEqual(res["c_library"], [f"libc.so.6 => {self.LIBC}"])

    def test_a_library_from_elsewhere_fails(self):
        gdal = "/usr/lib/x86_64-linux-gnu/libgdal.so.32"
        with self.assertRaises(RuntimeError) as e:
            gpu_check.check_libraries({"copgen": self.ldd(f"\tlibgdal.so.32 => {gdal} (0x1)")}, self.BUNDLE, self.TORCH)
        self.assertIn(f"copgen: libgdal.so.32 => {gdal}", str(e.exception))

    def test_a_missing_library_fails(self):
        with self.assertRaises(RuntimeError) as e:
            gpu_check.check_libraries({"copgen_gpu_tests": self.ldd("\tlibspdlog.so.1.10 => not found")},
                                      self.BUNDLE, self.TORCH)
        self.assertIn("copgen_gpu_tests: libspdlog.so.1.10 => not found", str(e.exception))

    def test_a_c_library_name_outside_the_system_directories_fails(self):
        with self.assertRaises(RuntimeError):
            gpu_check.check_libraries({"copgen": self.ldd("\tlibstdc++.so.6 => /opt/other/libstdc++.so.6 (0x1)")},
                                      self.BUNDLE, self.TORCH)


if __name__ == "__main__":
    unittest.main()
