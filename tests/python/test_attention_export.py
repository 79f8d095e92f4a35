"""The backbone exported with --attention sdpa computes what the one exported with
--attention math computes: the same tiny weights (same --seed) through both exports, both
TorchScript files loaded back and run on the CPU on fixed inputs.

Skipped where torch has no scaled_dot_product_attention (torch < 2.0, e.g. Debian's 1.13).

    COPGEN_SOURCE_DIR=. python -m unittest discover -s tests/python -p 'test_attention*' -v
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import torch
import torch.nn.functional as F

SOURCE_DIR = os.environ.get("COPGEN_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(SOURCE_DIR, "scripts", "models", "export_models.py")
SEED = 11
TOLERANCE = 1e-5


@unittest.skipUnless(hasattr(F, "scaled_dot_product_attention"),
                     f"torch {torch.__version__} has no scaled_dot_product_attention")
class SdpaExportMatchesMath(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        base = os.environ.get("COPGEN_TEST_TMP")
        if base:
            os.makedirs(base, exist_ok=True)
        cls.work = tempfile.mkdtemp(prefix="test_attention-", dir=base or None)
        cls.dirs = {}
        for attention in ("sdpa", "math"):
            out = os.path.join(cls.work, attention)
            proc = subprocess.run(
                [sys.executable, SCRIPT, "--tiny", "--seed", str(SEED), "--attention", attention,
                 "--out", out, "--save-state-dicts", os.path.join(out, "state"), "--quiet"],
                capture_output=True, text=True, timeout=300)
            if proc.returncode != 0:
                raise RuntimeError(f"--attention {attention} export failed:\n{proc.stdout}\n{proc.stderr}")
            cls.dirs[attention] = out

    @classmethod
    def tearDownClass(cls):
        if not os.environ.get("COPGEN_KEEP_TEST_TMP"):
            shutil.rmtree(cls.work, ignore_errors=True)

    def manifest(self, attention):
        with open(os.path.join(self.dirs[attention], "copgen.json"), encoding="utf-8") as f:
            return json.load(f)

    def test_manifests_name_the_attention(self):
        for attention in ("sdpa", "math"):
            self.assertEqual(self.manifest(attention)["backbone"]["attention"], attention)

    def test_same_weights(self):
        # The two exports differ only in the attention's code, never in its parameters.
        states = [torch.load(os.path.join(self.dirs[a], "state", "backbone_state_dict.pth"),
                             map_location="cpu") for a in ("sdpa", "math")]
        self.assertEqual(sorted(states[0]), sorted(states[1]))
        for key in states[0]:
            self.assertTrue(torch.equal(states[0][key], states[1][key]), key)

    def test_torchscript_outputs_agree(self):
        sdpa = torch.jit.load(os.path.join(self.dirs["sdpa"], "backbone.pt"), map_location="cpu").eval()
        math = torch.jit.load(os.path.join(self.dirs["math"], "backbone.pt"), map_location="cpu").eval()
        generator = torch.Generator().manual_seed(2024)
        z = torch.randn(2, 4, 4, 32, 32, generator=generator)
        t = torch.tensor([[0.0, 250.5, 999.0, 1000.0], [1000.0, 0.0, 10.25, 500.0]])
        with torch.no_grad():
            out_sdpa = sdpa(z, t)
            out_math = math(z, t)
        self.assertEqual(out_sdpa.shape, z.shape)
        self.assertEqual(out_sdpa.dtype, torch.float32)
        self.assertTrue(torch.isfinite(out_sdpa).all())
        diff = float((out_sdpa - out_math).abs().max())
        self.assertLessEqual(diff, TOLERANCE, f"max |sdpa - math| = {diff:.3g}")
        # Not trivially equal because both are zero: the outputs carry signal.
        self.assertGreater(float(out_math.abs().mean()), 1e-3)


if __name__ == "__main__":
    unittest.main()
