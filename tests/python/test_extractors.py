"""Tests of the metric feature extractors in scripts/models/export_models.py (FID Inception-v3,
VGG16), run with an interpreter that has torch:

    COPGEN_SOURCE_DIR=. /usr/bin/python3 -m unittest discover -s tests/python -v

The full-size networks are built on torch's meta device to check their key tables
against the published checkpoints' names and shapes (torchvision's Inception3 without
AuxLogits, 1008 classes; torchvision's VGG16), which cannot be downloaded here. The
resize and the pooling conventions are checked against hand-computed values.
"""

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import types
import unittest

import numpy as np
import torch

SOURCE_DIR = os.environ.get("COPGEN_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(SOURCE_DIR, "scripts", "models", "export_models.py")
sys.path.insert(0, os.path.dirname(SCRIPT))
import export_models as em  # noqa: E402

WORK = None


def setUpModule():
    global WORK
    base = os.environ.get("COPGEN_TEST_TMP")
    if base:
        os.makedirs(base, exist_ok=True)
    WORK = tempfile.mkdtemp(prefix="test_extractors-", dir=base or None)


def tearDownModule():
    if WORK and not os.environ.get("COPGEN_KEEP_TEST_TMP"):
        shutil.rmtree(WORK, ignore_errors=True)


def export(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=300)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def conv_bn(prefix, out_ch, in_ch, kh, kw):
    """The keys of one torchvision BasicConv2d."""
    return {f"{prefix}.conv.weight": (out_ch, in_ch, kh, kw), f"{prefix}.bn.weight": (out_ch,),
            f"{prefix}.bn.bias": (out_ch,), f"{prefix}.bn.running_mean": (out_ch,),
            f"{prefix}.bn.running_var": (out_ch,), f"{prefix}.bn.num_batches_tracked": ()}


def inception_table():
    """pt_inception-2015-12-05's key table, written out from the architecture."""
    t = {}
    t.update(conv_bn("Conv2d_1a_3x3", 32, 3, 3, 3))
    t.update(conv_bn("Conv2d_2a_3x3", 32, 32, 3, 3))
    t.update(conv_bn("Conv2d_2b_3x3", 64, 32, 3, 3))
    t.update(conv_bn("Conv2d_3b_1x1", 80, 64, 1, 1))
    t.update(conv_bn("Conv2d_4a_3x3", 192, 80, 3, 3))
    for name, cin, pool in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
        t.update(conv_bn(f"{name}.branch1x1", 64, cin, 1, 1))
        t.update(conv_bn(f"{name}.branch5x5_1", 48, cin, 1, 1))
        t.update(conv_bn(f"{name}.branch5x5_2", 64, 48, 5, 5))
        t.update(conv_bn(f"{name}.branch3x3dbl_1", 64, cin, 1, 1))
        t.update(conv_bn(f"{name}.branch3x3dbl_2", 96, 64, 3, 3))
        t.update(conv_bn(f"{name}.branch3x3dbl_3", 96, 96, 3, 3))
        t.update(conv_bn(f"{name}.branch_pool", pool, cin, 1, 1))
    t.update(conv_bn("Mixed_6a.branch3x3", 384, 288, 3, 3))
    t.update(conv_bn("Mixed_6a.branch3x3dbl_1", 64, 288, 1, 1))
    t.update(conv_bn("Mixed_6a.branch3x3dbl_2", 96, 64, 3, 3))
    t.update(conv_bn("Mixed_6a.branch3x3dbl_3", 96, 96, 3, 3))
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        t.update(conv_bn(f"{name}.branch1x1", 192, 768, 1, 1))
        t.update(conv_bn(f"{name}.branch7x7_1", c7, 768, 1, 1))
        t.update(conv_bn(f"{name}.branch7x7_2", c7, c7, 1, 7))
        t.update(conv_bn(f"{name}.branch7x7_3", 192, c7, 7, 1))
        t.update(conv_bn(f"{name}.branch7x7dbl_1", c7, 768, 1, 1))
        t.update(conv_bn(f"{name}.branch7x7dbl_2", c7, c7, 7, 1))
        t.update(conv_bn(f"{name}.branch7x7dbl_3", c7, c7, 1, 7))
        t.update(conv_bn(f"{name}.branch7x7dbl_4", c7, c7, 7, 1))
        t.update(conv_bn(f"{name}.branch7x7dbl_5", 192, c7, 1, 7))
        t.update(conv_bn(f"{name}.branch_pool", 192, 768, 1, 1))
    t.update(conv_bn("Mixed_7a.branch3x3_1", 192, 768, 1, 1))
    t.update(conv_bn("Mixed_7a.branch3x3_2", 320, 192, 3, 3))
    t.update(conv_bn("Mixed_7a.branch7x7x3_1", 192, 768, 1, 1))
    t.update(conv_bn("Mixed_7a.branch7x7x3_2", 192, 192, 1, 7))
    t.update(conv_bn("Mixed_7a.branch7x7x3_3", 192, 192, 7, 1))
    t.update(conv_bn("Mixed_7a.branch7x7x3_4", 192, 192, 3, 3))
    for name, cin in (("Mixed_7b", 1280), ("Mixed_7c", 2048)):
        t.update(conv_bn(f"{name}.branch1x1", 320, cin, 1, 1))
        t.update(conv_bn(f"{name}.branch3x3_1", 384, cin, 1, 1))
        t.update(conv_bn(f"{name}.branch3x3_2a", 384, 384, 1, 3))
        t.update(conv_bn(f"{name}.branch3x3_2b", 384, 384, 3, 1))
        t.update(conv_bn(f"{name}.branch3x3dbl_1", 448, cin, 1, 1))
        t.update(conv_bn(f"{name}.branch3x3dbl_2", 384, 448, 3, 3))
        t.update(conv_bn(f"{name}.branch3x3dbl_3a", 384, 384, 1, 3))
        t.update(conv_bn(f"{name}.branch3x3dbl_3b", 384, 384, 3, 1))
        t.update(conv_bn(f"{name}.branch_pool", 192, cin, 1, 1))
    t["fc.weight"] = (1008, 2048)
    t["fc.bias"] = (1008,)
    return t


def vgg_table():
    t = {}
    cin = 3
    for index, cout in ((0, 64), (2, 64), (5, 128), (7, 128), (10, 256), (12, 256), (14, 256),
                        (17, 512), (19, 512), (21, 512), (24, 512), (26, 512), (28, 512)):
        t[f"features.{index}.weight"] = (cout, cin, 3, 3)
        t[f"features.{index}.bias"] = (cout,)
        cin = cout
    for index, (cout, cin) in ((0, (4096, 25088)), (3, (4096, 4096)), (6, (1000, 4096))):
        t[f"classifier.{index}.weight"] = (cout, cin)
        t[f"classifier.{index}.bias"] = (cout,)
    return t


def tf1_resize_reference(x, out_h, out_w):
    """TF1 resize_bilinear, legacy mode, with float32 scale, written as plain loops."""
    x = np.asarray(x, dtype=np.float32)
    in_h, in_w = x.shape

    def axis(n_in, n_out):
        scale = np.float32(n_in) / np.float32(n_out)
        out = []
        for o in range(n_out):
            s = np.float32(o) * scale
            lo = int(math.floor(s))
            out.append((lo, min(lo + 1, n_in - 1), np.float32(s - np.float32(lo))))
        return out

    res = np.zeros((out_h, out_w), dtype=np.float32)
    for oy, (y0, y1, wy) in enumerate(axis(in_h, out_h)):
        for ox, (x0, x1, wx) in enumerate(axis(in_w, out_w)):
            top = x[y0, x0] + (x[y0, x1] - x[y0, x0]) * wx
            bottom = x[y1, x0] + (x[y1, x1] - x[y1, x0]) * wx
            res[oy, ox] = top + (bottom - top) * wy
    return res


class FullSizeExtractors(unittest.TestCase):
    def test_inception_key_table_matches_pt_inception_2015_12_05(self):
        model = em.FIDInceptionV3(device="meta")
        got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        want = inception_table()
        self.assertEqual(sorted(set(got) - set(want)), [])
        self.assertEqual(sorted(set(want) - set(got)), [])
        self.assertEqual(got, want)
        self.assertFalse(any(k.startswith("AuxLogits") for k in got))
        self.assertEqual(model.feature_dim, 2048)
        self.assertEqual(model.input_size, 299)
        # torchvision's inception_v3 (27,161,264 parameters) less AuxLogits (3,326,696),
        # plus the 8 extra classes of the TF graph (8 x 2049)
        self.assertEqual(em.count_parameters(model), 27161264 - 3326696 + 8 * 2049)
        self.assertEqual(em.count_parameters(model),
                         sum(math.prod(s) for k, s in want.items()
                             if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                self.assertEqual(m.eps, 0.001)
            if isinstance(m, torch.nn.Conv2d):
                self.assertIsNone(m.bias)

    def test_inception_pool_branches_follow_the_tf_graph(self):
        model = em.FIDInceptionV3(device="meta")
        self.assertFalse(model.Mixed_7b.max_pool)  # FIDInceptionE_1: average pool
        self.assertTrue(model.Mixed_7c.max_pool)   # FIDInceptionE_2: max pool

    def test_vgg16_key_table_matches_torchvision(self):
        model = em.VGG16Features(device="meta")
        got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        self.assertEqual(got, vgg_table())
        self.assertEqual(em.count_parameters(model), 138357544)  # torchvision's VGG16
        self.assertEqual(model.feature_dim, 4096)
        self.assertEqual(model.input_size, 224)

    def test_inception_checkpoint_loads_strictly_with_or_without_counters(self):
        torch.manual_seed(0)
        source = em.FIDInceptionV3()
        em._init_random(source)
        source.eval()
        sd = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
        path = os.path.join(WORK, "pt_inception-test.pth")
        torch.save(sd, path)
        args = types.SimpleNamespace(inception=path, vgg=None, tiny_extractors=False, seed=0)
        loaded, src = em.build_extractor("inception", args, lambda m: None)
        self.assertEqual(src, "pt_inception-test.pth")
        x = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), source(x), rtol=0, atol=0)

        bad = dict(sd)
        bad["fc.weight"] = torch.zeros(1000, 2048)
        bad["fc.bias"] = torch.zeros(1000)
        torch.save(bad, path)
        with self.assertRaisesRegex(em.ExportError, r"fc\.weight \(checkpoint \[1000, 2048\]"):
            em.build_extractor("inception", args, lambda m: None)
        renamed = dict(sd)
        renamed["Mixed_5b.branch_pool_x.conv.weight"] = renamed.pop("Mixed_5b.branch_pool.conv.weight")
        torch.save(renamed, path)
        with self.assertRaisesRegex(em.ExportError, r"missing keys: Mixed_5b\.branch_pool\.conv\.weight"):
            em.build_extractor("inception", args, lambda m: None)


class Conventions(unittest.TestCase):
    def test_tf1_resize_hand_values(self):
        x = torch.tensor([[[[0.0, 100.0], [200.0, 50.0]]]])
        want = torch.tensor([[0, 50, 100, 100], [100, 87.5, 75, 75], [200, 125, 50, 50],
                             [200, 125, 50, 50]])
        self.assertTrue(torch.equal(em.tf1_resize_bilinear(x, 4, 4)[0, 0], want))
        row = em.tf1_resize_bilinear(torch.tensor([[[[0.0, 100.0, 200.0]]]]), 1, 4)
        self.assertTrue(torch.equal(row[0, 0, 0], torch.tensor([0.0, 75.0, 150.0, 200.0])))

    def test_tf1_resize_matches_loops_at_network_sizes(self):
        g = torch.Generator().manual_seed(0)
        for h, w, oh, ow in ((37, 52, 299, 299), (256, 256, 224, 224), (256, 256, 299, 299)):
            img = torch.randint(0, 256, (h, w), generator=g).float()
            got = em.tf1_resize_bilinear(img[None, None], oh, ow)[0, 0].numpy()
            want = tf1_resize_reference(img.numpy(), oh, ow)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)

    def _block_with_identity_pool_branch(self, block, zero_others=True):
        """Zero every branch but the pool branch, whose 1x1 conv copies channel 0 and whose
        batch norm is the identity, so the block's last output channel is the pool itself."""
        with torch.no_grad():
            for name, m in block.named_modules():
                if isinstance(m, em.BasicConv2d):
                    m.conv.weight.zero_()
                    m.bn.running_mean.zero_()
                    m.bn.running_var.fill_(1.0 - m.bn.eps)
                    m.bn.weight.fill_(1.0)
                    m.bn.bias.zero_()
            block.branch_pool.conv.weight[:, 0] = 1.0
        return block.eval()

    def test_average_pool_branches_do_not_count_the_padding(self):
        for block, channels in ((em.FIDInceptionA(2, 1, 16), 2), (em.FIDInceptionC(2, 16, 16), 2),
                                (em.FIDInceptionE(2, False, 16), 2)):
            block = self._block_with_identity_pool_branch(block)
            x = torch.full((1, channels, 5, 5), 2.0)
            with torch.no_grad():
                pooled = block(x)[0, -1]
            # the TF graph averages the valid neighbours only: a constant stays constant,
            # also in the corners (count_include_pad=True would give 2 * 4 / 9 there)
            torch.testing.assert_close(pooled, torch.full((5, 5), 2.0))

    def test_last_block_max_pools(self):
        block = self._block_with_identity_pool_branch(em.FIDInceptionE(2, True, 16))
        x = torch.zeros(1, 2, 4, 4)
        x[0, 0, 0, 0] = 3.0
        with torch.no_grad():
            pooled = block(x)[0, -1]
        want = torch.zeros(4, 4)
        want[:2, :2] = 3.0
        torch.testing.assert_close(pooled, want)

    def test_preprocessing_normalises_as_documented(self):
        inc = em.FIDInceptionV3(16).eval()
        vgg = em.VGG16Features(16).eval()
        img = torch.full((1, 3, 299, 299), 64, dtype=torch.uint8)
        self.assertTrue(torch.equal(inc.preprocess(img), torch.full((1, 3, 299, 299), -0.5)))
        v = vgg.preprocess(torch.full((1, 3, 224, 224), 255, dtype=torch.uint8))
        for c, (mean, std) in enumerate(zip(em.IMAGENET_MEAN, em.IMAGENET_STD)):
            self.assertAlmostEqual(float(v[0, c, 5, 5]), (1.0 - mean) / std, places=5)
        with self.assertRaisesRegex(RuntimeError, "uint8"):
            inc(torch.zeros(1, 3, 8, 8))
        with self.assertRaisesRegex(RuntimeError, r"\[N, 3, H, W\]"):
            vgg(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))


class TinyExtractorExport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.out = os.path.join(WORK, "tiny")
        cls.parity = os.path.join(WORK, "parity")
        proc = export("--tiny-extractors", "--seed", "7", "--extractors-out", cls.out,
                      "--parity-dir", cls.parity, "--quiet")
        if proc.returncode != 0:
            raise RuntimeError(f"tiny extractor export failed:\n{proc.stdout}\n{proc.stderr}")
        cls.stdout = proc.stdout

    def test_files_and_manifest(self):
        self.assertEqual(self.stdout, "")
        self.assertEqual(sorted(os.listdir(self.out)), ["extractors.json", "inception.pt", "vgg16.pt"])
        with open(os.path.join(self.out, "extractors.json")) as f:
            m = json.load(f)
        self.assertEqual((m["format"], m["format_version"]), ("copgen-extractors", 1))
        for key, file, name, feature, dim, size in (
                ("inception", "inception.pt", "inception-v3-fid", "pool3", 128, 299),
                ("vgg16", "vgg16.pt", "vgg16-fc2-relu", "fc2_relu", 256, 224)):
            e = m[key]
            self.assertEqual(e["file"], file)
            self.assertEqual(e["sha256"], sha256(os.path.join(self.out, file)))
            self.assertEqual((e["name"], e["feature"], e["feature_dim"], e["input_size"]),
                             (name, feature, dim, size))
            self.assertEqual(e["width_divisor"], 16)
            self.assertEqual(e["resize"], "tf1-bilinear")
            self.assertEqual(e["source"], "random (seed 7)")
            module = torch.jit.load(os.path.join(self.out, file))
            self.assertEqual(e["parameters"], sum(p.numel() for p in module.parameters()))
            self.assertEqual((module.feature_dim, module.input_size, module.name), (dim, size, name))

    def test_torchscript_matches_the_fixtures(self):
        for tag in ("a", "b"):
            images = torch.from_numpy(
                np.load(os.path.join(self.parity, f"extractor_images_{tag}.npy"))).to(torch.uint8)
            for kind in ("inception", "vgg16"):
                module = torch.jit.load(os.path.join(self.out, f"{kind}.pt"))
                want = torch.from_numpy(np.load(os.path.join(self.parity, f"{kind}_features_{tag}.npy")))
                with torch.no_grad():
                    torch.testing.assert_close(module(images), want, rtol=1e-5, atol=1e-5)
                self.assertGreater(float(want.std()), 0.05, f"{kind} {tag} features degenerate")

    def test_deterministic_for_the_seed(self):
        same = os.path.join(WORK, "tiny-same")
        other = os.path.join(WORK, "tiny-other")
        self.assertEqual(export("--tiny-extractors", "--seed", "7", "--extractors-out", same,
                                "--quiet").returncode, 0)
        self.assertEqual(export("--tiny-extractors", "--seed", "8", "--extractors-out", other,
                                "--quiet").returncode, 0)
        for file in ("inception.pt", "vgg16.pt", "extractors.json"):
            self.assertEqual(sha256(os.path.join(self.out, file)), sha256(os.path.join(same, file)))
        self.assertNotEqual(sha256(os.path.join(self.out, "vgg16.pt")),
                            sha256(os.path.join(other, "vgg16.pt")))

    def test_extractors_beside_the_models_with_out(self):
        out = os.path.join(WORK, "models-and-extractors")
        proc = export("--tiny", "--tiny-extractors", "--out", out, "--quiet")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(sorted(os.listdir(out)), ["autoencoder.pt", "backbone.pt", "copgen.json",
                                                   "extractors.json", "inception.pt", "vgg16.pt"])

    def test_flag_errors(self):
        for args, needle in ((["--tiny-extractors"], "--out"),
                             (["--tiny-extractors", "--inception", "x.pth", "--extractors-out", WORK],
                              "cannot be combined"),
                             (["--backbone", "x.pth", "--extractors-out", WORK], "needs --out")):
            proc = export(*args)
            self.assertEqual(proc.returncode, 2, args)
            self.assertIn(needle, proc.stderr)
        out = os.path.join(WORK, "missing-ckpt")
        proc = export("--inception", os.path.join(WORK, "none.pth"), "--extractors-out", out)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("none.pth", proc.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "extractors.json")))


if __name__ == "__main__":
    unittest.main()
