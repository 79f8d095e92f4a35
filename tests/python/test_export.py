"""Tests of scripts/models/export_models.py (run with an interpreter that has torch):

    COPGEN_SOURCE_DIR=. /usr/bin/python3 -m unittest discover -s tests/python -v

The full-size networks are only built on torch's meta device (no memory, no init), so
their key tables and parameter counts are checked without allocating 1.4 GB. Everything
that runs is tiny. The networks are also checked against independent functional
references written here from shared/reference/cop-gen-beta.md.
"""

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch
import torch.nn.functional as F

SOURCE_DIR = os.environ.get("COPGEN_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(SOURCE_DIR, "scripts", "models", "export_models.py")
sys.path.insert(0, os.path.dirname(SCRIPT))
import export_models as em  # noqa: E402

TINY_SEED = 7
WORK = None  # this run's scratch directory, made in setUpModule
TINY = {}  # paths of the shared tiny export


def setUpModule():
    global WORK
    base = os.environ.get("COPGEN_TEST_TMP")
    if base:
        os.makedirs(base, exist_ok=True)
    WORK = tempfile.mkdtemp(prefix="test_export-", dir=base or None)
    TINY["models"] = os.path.join(WORK, "tiny")
    TINY["parity"] = os.path.join(WORK, "parity")
    TINY["state"] = os.path.join(WORK, "state")
    proc = export("--tiny", "--seed", str(TINY_SEED), "--out", TINY["models"],
                  "--parity-dir", TINY["parity"], "--save-state-dicts", TINY["state"])
    if proc.returncode != 0:
        raise RuntimeError(f"tiny export failed:\n{proc.stdout}\n{proc.stderr}")
    TINY["stdout"] = proc.stdout


def tearDownModule():
    if WORK and not os.environ.get("COPGEN_KEEP_TEST_TMP"):
        shutil.rmtree(WORK, ignore_errors=True)


def export(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=300)


def load_npy(name):
    return torch.from_numpy(np.load(os.path.join(TINY["parity"], name)))


def tiny_state(name):
    return torch.load(os.path.join(TINY["state"], name), map_location="cpu")


def eager_tiny_backbone():
    model = em.Backbone(**em.TINY_BACKBONE, attention="math")
    model.load_state_dict(tiny_state("backbone_state_dict.pth"), strict=True)
    return model.eval()


def eager_tiny_autoencoder():
    model = em.Autoencoder(**em.TINY_AE)
    model.load_state_dict(tiny_state("autoencoder_state_dict.pth"), strict=True)
    return model.eval()


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ---------------------------------------------------------------------------------------
# Independent references, written from the doc's formulas (float64, no shared code).
# ---------------------------------------------------------------------------------------


def reference_time_tokens(t, dim):
    half = dim // 2
    f = np.exp(-math.log(10000.0) * np.arange(half) / half)
    arg = np.asarray(t, dtype=np.float64)[..., None] * f
    return np.concatenate([np.cos(arg), np.sin(arg)], axis=-1)


def reference_backbone(sd, z, t, num_heads):
    sd = {k: v.double() for k, v in sd.items()}
    z = z.double()
    b, m_count = z.shape[:2]
    dim = sd["pos_embed"].shape[-1]
    hd = dim // num_heads
    tokens = [torch.from_numpy(reference_time_tokens(t.double().numpy(), dim))]  # B, M, D
    for m in range(m_count):
        y = F.conv2d(z[:, m], sd[f"patch_embeds.{m}.proj.weight"],
                     sd[f"patch_embeds.{m}.proj.bias"], stride=2)
        tokens.append(y.permute(0, 2, 3, 1).reshape(b, -1, dim))  # row-major patches
    x = torch.cat(tokens, dim=1) + sd["pos_embed"]

    def ln(x, p):
        return F.layer_norm(x, (dim,), sd[p + ".weight"], sd[p + ".bias"], 1e-5)

    def lin(x, p):
        return F.linear(x, sd[p + ".weight"], sd.get(p + ".bias"))

    def block(x, p, skip=None):
        if skip is not None:
            x = ln(lin(torch.cat([x, skip], -1), p + ".skip_linear"), p + ".norm1")
        n = x.shape[1]
        qkv = lin(x, p + ".attn.qkv").reshape(b, n, 3, num_heads, hd)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # B, N, H, hd
        w = torch.softmax(torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hd), dim=-1)
        a = torch.einsum("bhqk,bkhd->bqhd", w, v).reshape(b, n, dim)
        x = ln(x + lin(a, p + ".attn.proj"), p + ".norm2")
        mlp = lin(F.gelu(lin(x, p + ".mlp.fc1")), p + ".mlp.fc2")
        return ln(x + mlp, p + ".norm3")

    depth_half = len({k.split(".")[1] for k in sd if k.startswith("in_blocks.")})
    stack = []
    for i in range(depth_half):
        x = block(x, f"in_blocks.{i}")
        stack.append(x)
    x = block(x, "mid_block")
    for i in range(depth_half):
        x = block(x, f"out_blocks.{i}", stack.pop())
    x = ln(x, "norm")[:, m_count:]

    size = z.shape[-1]
    g = size // 2
    out = torch.zeros(b, m_count, 4, size, size, dtype=torch.float64)
    hh, ww, p1, p2, c = np.meshgrid(np.arange(g), np.arange(g), [0, 1], [0, 1], np.arange(4),
                                    indexing="ij")
    hh, ww, p1, p2, c = (torch.from_numpy(a.ravel()) for a in (hh, ww, p1, p2, c))
    for m in range(m_count):
        feat = lin(x[:, m * g * g:(m + 1) * g * g], f"decoder_preds.{m}")  # B, G*G, 16
        # out[b, c, 2h+p1, 2w+p2] = feat[b, 16h+w, 4(2 p1 + p2) + c]
        out[:, m, c, 2 * hh + p1, 2 * ww + p2] = feat[:, g * hh + ww, 4 * (2 * p1 + p2) + c]
    return out


class ReferenceAutoencoder:
    """The KL-f8 autoencoder as plain functions over a state dict."""

    def __init__(self, sd):
        self.sd = {k: v.double() for k, v in sd.items()}
        self.levels = len({k.split(".")[2] for k in sd if k.startswith("encoder.down.")})
        self.blocks = len({k.split(".")[4] for k in sd if k.startswith("encoder.down.0.block.")})

    def gn(self, x, p):
        return F.group_norm(x, 32, self.sd[p + ".weight"], self.sd[p + ".bias"], 1e-6)

    def conv(self, x, p, stride=1, padding=1):
        return F.conv2d(x, self.sd[p + ".weight"], self.sd[p + ".bias"], stride, padding)

    def resnet(self, x, p):
        h = self.conv(F.silu(self.gn(x, p + ".norm1")), p + ".conv1")
        h = self.conv(F.silu(self.gn(h, p + ".norm2")), p + ".conv2")
        if p + ".nin_shortcut.weight" in self.sd:
            x = self.conv(x, p + ".nin_shortcut", padding=0)
        return x + h

    def attn(self, x, p):
        h = self.gn(x, p + ".norm")
        q, k, v = (self.conv(h, f"{p}.{n}", padding=0).flatten(2) for n in "qkv")  # B, C, N
        w = torch.softmax(torch.einsum("bci,bcj->bij", q, k) * q.shape[1] ** -0.5, dim=-1)
        out = torch.einsum("bij,bcj->bci", w, v).reshape(x.shape)
        return x + self.conv(out, p + ".proj_out", padding=0)

    def mid(self, h, p):
        return self.resnet(self.attn(self.resnet(h, p + ".block_1"), p + ".attn_1"), p + ".block_2")

    def encode_moments(self, x):
        h = self.conv(x.double(), "encoder.conv_in")
        for i in range(self.levels):
            for j in range(self.blocks):
                h = self.resnet(h, f"encoder.down.{i}.block.{j}")
            if i != self.levels - 1:
                h = self.conv(F.pad(h, (0, 1, 0, 1)), f"encoder.down.{i}.downsample.conv",
                              stride=2, padding=0)
        h = self.mid(h, "encoder.mid")
        h = self.conv(F.silu(self.gn(h, "encoder.norm_out")), "encoder.conv_out")
        return self.conv(h, "quant_conv", padding=0)

    def decode(self, z):
        h = self.conv(z.double() / 0.18215, "post_quant_conv", padding=0)
        h = self.mid(self.conv(h, "decoder.conv_in"), "decoder.mid")
        for i in reversed(range(self.levels)):
            for j in range(self.blocks + 1):
                h = self.resnet(h, f"decoder.up.{i}.block.{j}")
            if i != 0:
                h = self.conv(F.interpolate(h, scale_factor=2.0, mode="nearest"),
                              f"decoder.up.{i}.upsample.conv")
        return self.conv(F.silu(self.gn(h, "decoder.norm_out")), "decoder.conv_out")


# ---------------------------------------------------------------------------------------
# Full-size architecture, on the meta device.
# ---------------------------------------------------------------------------------------


class FullSizeArchitecture(unittest.TestCase):
    def test_backbone_state_dict_matches_the_doc_table(self):
        model = em.Backbone(embed_dim=1024, depth=20, num_heads=16, attention="math",
                            device="meta")
        got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        d = 1024
        want = {"pos_embed": (1, 1028, d), "norm.weight": (d,), "norm.bias": (d,)}
        for m in range(4):
            want[f"patch_embeds.{m}.proj.weight"] = (d, 4, 2, 2)
            want[f"patch_embeds.{m}.proj.bias"] = (d,)
            want[f"decoder_preds.{m}.weight"] = (16, d)
            want[f"decoder_preds.{m}.bias"] = (16,)
        blocks = [f"in_blocks.{i}" for i in range(10)] + ["mid_block"] + \
                 [f"out_blocks.{i}" for i in range(10)]
        for p in blocks:
            for n in ("norm2", "norm3"):
                want[f"{p}.{n}.weight"] = (d,)
                want[f"{p}.{n}.bias"] = (d,)
            want[f"{p}.attn.qkv.weight"] = (3 * d, d)
            want[f"{p}.attn.proj.weight"] = (d, d)
            want[f"{p}.attn.proj.bias"] = (d,)
            want[f"{p}.mlp.fc1.weight"] = (4 * d, d)
            want[f"{p}.mlp.fc1.bias"] = (4 * d,)
            want[f"{p}.mlp.fc2.weight"] = (d, 4 * d)
            want[f"{p}.mlp.fc2.bias"] = (d,)
            if p.startswith("out_blocks"):
                want[f"{p}.norm1.weight"] = (d,)
                want[f"{p}.norm1.bias"] = (d,)
                want[f"{p}.skip_linear.weight"] = (d, 2 * d)
                want[f"{p}.skip_linear.bias"] = (d,)
        self.assertEqual(sorted(set(got) - set(want)), [])
        self.assertEqual(sorted(set(want) - set(got)), [])
        self.assertEqual(got, want)
        self.assertFalse(any(k.endswith("qkv.bias") for k in got))
        self.assertFalse(any("norm1" in k for k in got if not k.startswith("out_blocks.")))
        count = em.count_parameters(model)
        self.assertEqual(count, sum(math.prod(s) for s in want.values()))
        self.assertAlmostEqual(count / 1e6, 286.6, delta=0.1)

    def test_autoencoder_key_families_and_parameter_counts(self):
        model = em.Autoencoder(ch=128, ch_mult=(1, 2, 4, 4), num_res_blocks=2, device="meta")
        got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        expect = {
            "encoder.conv_in.weight": (128, 3, 3, 3),
            "encoder.down.0.block.1.conv2.weight": (128, 128, 3, 3),
            "encoder.down.1.block.0.conv1.weight": (256, 128, 3, 3),
            "encoder.down.2.downsample.conv.weight": (512, 512, 3, 3),
            "encoder.down.3.block.1.norm2.weight": (512,),
            "encoder.mid.block_1.conv1.weight": (512, 512, 3, 3),
            "encoder.mid.attn_1.q.weight": (512, 512, 1, 1),
            "encoder.mid.attn_1.proj_out.bias": (512,),
            "encoder.mid.block_2.norm1.bias": (512,),
            "encoder.norm_out.weight": (512,),
            "encoder.conv_out.weight": (8, 512, 3, 3),
            "quant_conv.weight": (8, 8, 1, 1),
            "post_quant_conv.weight": (4, 4, 1, 1),
            "decoder.conv_in.weight": (512, 4, 3, 3),
            "decoder.mid.attn_1.norm.weight": (512,),
            "decoder.up.3.block.0.conv1.weight": (512, 512, 3, 3),
            "decoder.up.3.upsample.conv.weight": (512, 512, 3, 3),
            "decoder.up.1.block.0.conv1.weight": (256, 512, 3, 3),
            "decoder.up.0.block.2.conv2.weight": (128, 128, 3, 3),
            "decoder.norm_out.weight": (128,),
            "decoder.conv_out.weight": (3, 128, 3, 3),
        }
        for key, shape in expect.items():
            self.assertEqual(got.get(key), shape, key)
        shortcuts = {k.rsplit(".", 2)[0] for k in got if ".nin_shortcut." in k}
        self.assertEqual(shortcuts, {"encoder.down.1.block.0", "encoder.down.2.block.0",
                                     "decoder.up.1.block.0", "decoder.up.0.block.0"})
        down = {k.split(".")[2] for k in got if ".downsample." in k}
        up = {k.split(".")[2] for k in got if ".upsample." in k}
        self.assertEqual(down, {"0", "1", "2"})
        self.assertEqual(up, {"1", "2", "3"})
        for i in range(4):
            self.assertIn(f"encoder.down.{i}.block.1.conv1.weight", got)
            self.assertNotIn(f"encoder.down.{i}.block.2.conv1.weight", got)
            self.assertIn(f"decoder.up.{i}.block.2.conv1.weight", got)
            self.assertNotIn(f"decoder.up.{i}.block.3.conv1.weight", got)
        families = {k.split(".")[0] for k in got}
        self.assertEqual(families, {"encoder", "decoder", "quant_conv", "post_quant_conv"})
        self.assertAlmostEqual(em.count_parameters(model.encoder) / 1e6, 34.2, delta=0.05)
        self.assertAlmostEqual(em.count_parameters(model.decoder) / 1e6, 49.5, delta=0.05)
        self.assertEqual(model.downsample_factor, 8)

    def test_dimensions_are_read_from_checkpoint_shapes(self):
        sd = em.Backbone(embed_dim=1024, depth=20, num_heads=16, device="meta").state_dict()
        self.assertEqual(em.backbone_dims_from_state_dict(sd, "x"),
                         dict(embed_dim=1024, depth=20, num_modalities=4, latent_channels=4,
                              latent_size=32, patch_size=2))
        sd = em.Autoencoder(device="meta").state_dict()
        self.assertEqual(em.autoencoder_dims_from_state_dict(sd, "x"),
                         dict(ch=128, ch_mult=(1, 2, 4, 4), num_res_blocks=2, z_channels=4,
                              embed_dim=4))


# ---------------------------------------------------------------------------------------
# The tiny export made once in setUpModule.
# ---------------------------------------------------------------------------------------


class TinyExport(unittest.TestCase):
    # How long this export takes (it runs at every build of the C++ tests) is a figure of
    # bench/export_bench.sh, not a test.

    def test_manifest(self):
        models = TINY["models"]
        with open(os.path.join(models, "copgen.json")) as f:
            manifest = json.load(f)
        self.assertEqual(manifest["format"], "copgen-models")
        self.assertEqual(manifest["format_version"], 1)
        self.assertEqual(manifest["modalities"], ["DEM", "S1RTC", "S2L1C", "S2L2A"])
        self.assertEqual(manifest["latent_shape"], [4, 32, 32])
        self.assertEqual(manifest["image_size"], 256)
        self.assertEqual(manifest["scale_factor"], 0.18215)
        self.assertEqual(manifest["schedule"], {
            "type": "discrete_vp", "beta_schedule": "scaled_linear", "beta_start": 0.00085,
            "beta_end": 0.012, "num_timesteps": 1000})
        bb = manifest["backbone"]
        self.assertEqual(bb["file"], "backbone.pt")
        self.assertEqual(bb["sha256"], sha256(os.path.join(models, "backbone.pt")))
        self.assertEqual((bb["embed_dim"], bb["depth"], bb["num_heads"], bb["mlp_ratio"],
                          bb["patch_size"], bb["num_modalities"], bb["qkv_bias"]),
                         (64, 4, 2, 4, 2, 4, False))
        self.assertEqual(bb["parameters"],
                         sum(v.numel() for v in tiny_state("backbone_state_dict.pth").values()))
        self.assertEqual(bb["attention"], "sdpa" if em.HAS_SDPA else "math")
        self.assertEqual(bb["source"], f"random (seed {TINY_SEED})")
        ae = manifest["autoencoder"]
        self.assertEqual(ae["file"], "autoencoder.pt")
        self.assertEqual(ae["sha256"], sha256(os.path.join(models, "autoencoder.pt")))
        self.assertEqual((ae["ch"], ae["ch_mult"], ae["num_res_blocks"], ae["z_channels"],
                          ae["embed_dim"]), (32, [1, 1, 2, 2], 1, 4, 4))
        self.assertEqual(ae["parameters"],
                         sum(v.numel() for v in tiny_state("autoencoder_state_dict.pth").values()))
        self.assertEqual(ae["source"], f"random (seed {TINY_SEED})")
        self.assertEqual(manifest["exporter"],
                         {"script": "export_models.py", "torch_version": torch.__version__})
        self.assertEqual(sorted(os.listdir(models)),
                         ["autoencoder.pt", "backbone.pt", "copgen.json"])  # no temporaries

    def test_torchscript_attributes(self):
        bb = torch.jit.load(os.path.join(TINY["models"], "backbone.pt"))
        self.assertEqual({n: getattr(bb, n) for n in (
            "embed_dim", "depth", "num_heads", "num_modalities", "latent_channels",
            "latent_size", "patch_size")},
            dict(embed_dim=64, depth=4, num_heads=2, num_modalities=4, latent_channels=4,
                 latent_size=32, patch_size=2))
        ae = torch.jit.load(os.path.join(TINY["models"], "autoencoder.pt"))
        self.assertEqual({n: getattr(ae, n) for n in (
            "scale_factor", "z_channels", "embed_dim", "ch", "ch_mult", "num_res_blocks",
            "downsample_factor")},
            dict(scale_factor=0.18215, z_channels=4, embed_dim=4, ch=32, ch_mult=[1, 1, 2, 2],
                 num_res_blocks=1, downsample_factor=8))

    def test_parity_fixtures(self):
        shapes = {"backbone_z.npy": (2, 4, 4, 32, 32), "backbone_t.npy": (2, 4),
                  "backbone_out.npy": (2, 4, 4, 32, 32), "ae_x.npy": (2, 3, 256, 256),
                  "ae_moments.npy": (2, 8, 32, 32), "ae_z.npy": (2, 4, 32, 32),
                  "ae_decoded.npy": (2, 3, 256, 256), "randn_1234_a.npy": (3, 2, 4, 32, 32),
                  "randn_1234_b.npy": (2, 4, 32, 32), "timestep_embedding.npy": (4, 64)}
        self.assertEqual(sorted(os.listdir(TINY["parity"])), sorted(shapes))
        for name, shape in shapes.items():
            a = np.load(os.path.join(TINY["parity"], name))
            self.assertEqual(a.shape, shape, name)
            self.assertEqual(a.dtype, np.dtype("<f4"), name)
            self.assertTrue(np.isfinite(a).all(), name)
        np.testing.assert_array_equal(
            np.load(os.path.join(TINY["parity"], "backbone_t.npy")),
            np.array([[0, 250.5, 999.0, 1000], [1000, 0, 10.25, 500]], dtype=np.float32))
        x = load_npy("ae_x.npy")
        self.assertTrue(x.min() >= -1 and x.max() <= 1 and x.std() > 0.5)
        torch.manual_seed(1234)
        a = torch.randn(3, 2, 4, 32, 32)
        b = torch.randn(2, 4, 32, 32)
        self.assertTrue(torch.equal(load_npy("randn_1234_a.npy"), a))
        self.assertTrue(torch.equal(load_npy("randn_1234_b.npy"), b))
        np.testing.assert_allclose(np.load(os.path.join(TINY["parity"], "timestep_embedding.npy")),
                                   reference_time_tokens([0, 1, 500.5, 1000], 64), atol=1e-4)

    def test_outputs_are_order_one_and_not_degenerate(self):
        for name, lo, hi in (("backbone_out.npy", 0.1, 10), ("ae_moments.npy", 0.02, 10),
                             ("ae_decoded.npy", 0.02, 10)):
            a = load_npy(name)
            self.assertTrue(lo < float(a.std()) < hi, f"{name} std {float(a.std())}")
            self.assertLess(float(a.abs().max()), 50, name)
        out = load_npy("backbone_out.npy")
        # Different modalities, samples and timesteps give different predictions.
        self.assertGreater(float((out[:, 0] - out[:, 1]).abs().mean()), 1e-2)
        self.assertGreater(float((out[0] - out[1]).abs().mean()), 1e-2)

    def test_torchscript_matches_eager_and_fixtures(self):
        bb = torch.jit.load(os.path.join(TINY["models"], "backbone.pt"))
        ae = torch.jit.load(os.path.join(TINY["models"], "autoencoder.pt"))
        with torch.no_grad():
            z, t = load_npy("backbone_z.npy"), load_npy("backbone_t.npy")
            torch.testing.assert_close(bb(z, t), load_npy("backbone_out.npy"),
                                       rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(ae.encode_moments(load_npy("ae_x.npy")),
                                       load_npy("ae_moments.npy"), rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(ae.decode(load_npy("ae_z.npy")),
                                       load_npy("ae_decoded.npy"), rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(ae(load_npy("ae_x.npy")), load_npy("ae_moments.npy"),
                                       rtol=1e-5, atol=1e-5)
            # Fresh inputs through the eager modules rebuilt from the saved state dicts.
            g = torch.Generator().manual_seed(5)
            z = torch.randn(3, 4, 4, 32, 32, generator=g)
            t = torch.rand(3, 4, generator=g) * 1000
            torch.testing.assert_close(bb(z, t), eager_tiny_backbone()(z, t),
                                       rtol=1e-5, atol=1e-5)
            x = torch.rand(1, 3, 64, 64, generator=g) * 2 - 1
            eager_ae = eager_tiny_autoencoder()
            torch.testing.assert_close(ae.encode_moments(x), eager_ae.encode_moments(x),
                                       rtol=1e-5, atol=1e-5)

    def test_backbone_matches_the_doc_formulas(self):
        bb = torch.jit.load(os.path.join(TINY["models"], "backbone.pt"))
        z, t = load_npy("backbone_z.npy"), load_npy("backbone_t.npy")
        want = reference_backbone(tiny_state("backbone_state_dict.pth"), z, t, num_heads=2)
        with torch.no_grad():
            got = bb(z, t)
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=2e-4)

    def test_autoencoder_matches_the_doc_formulas(self):
        ae = torch.jit.load(os.path.join(TINY["models"], "autoencoder.pt"))
        ref = ReferenceAutoencoder(tiny_state("autoencoder_state_dict.pth"))
        g = torch.Generator().manual_seed(3)
        x = torch.rand(2, 3, 64, 48, generator=g) * 2 - 1  # any multiple of 8
        z = torch.randn(2, 4, 8, 6, generator=g)
        with torch.no_grad():
            moments = ae.encode_moments(x)
            decoded = ae.decode(z)
        self.assertEqual(tuple(moments.shape), (2, 8, 8, 6))
        self.assertEqual(tuple(decoded.shape), (2, 3, 64, 48))
        torch.testing.assert_close(moments.double(), ref.encode_moments(x), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(decoded.double(), ref.decode(z), rtol=1e-4, atol=1e-4)

    def test_unpatchify_places_a_hand_placed_element(self):
        scripted = torch.jit.load(os.path.join(TINY["models"], "backbone.pt"))
        for module in (eager_tiny_backbone(), scripted):
            h, w, p1, p2, c = 3, 11, 1, 0, 2
            feat = torch.zeros(2, 256, 16)
            feat[1, 16 * h + w, 4 * (2 * p1 + p2) + c] = 7.0
            out = module.unpatchify(feat)
            self.assertEqual(tuple(out.shape), (2, 4, 32, 32))
            self.assertEqual(float(out[1, c, 2 * h + p1, 2 * w + p2]), 7.0)
            self.assertEqual(float(out.abs().sum()), 7.0)

    def test_modality_order_of_heads(self):
        # Zeroing decoder_preds[m] must zero exactly modality m of the output.
        model = eager_tiny_backbone()
        with torch.no_grad():
            model.decoder_preds[2].weight.zero_()
            model.decoder_preds[2].bias.zero_()
            out = model(load_npy("backbone_z.npy"), load_npy("backbone_t.npy"))
        self.assertEqual(float(out[:, 2].abs().max()), 0.0)
        for m in (0, 1, 3):
            self.assertGreater(float(out[:, m].abs().mean()), 0.1)

    def test_backbone_rejects_wrong_shapes_with_a_message(self):
        # TorchScript raises torch.jit.Error (c10::Error in C++), carrying the message.
        bb = torch.jit.load(os.path.join(TINY["models"], "backbone.pt"))
        z = torch.zeros(1, 4, 4, 32, 32)
        with self.assertRaisesRegex(Exception, r"z must be \[B, 4, 4, 32, 32\]"):
            bb(torch.zeros(1, 3, 4, 32, 32), torch.zeros(1, 3))
        with self.assertRaisesRegex(Exception, r"t must be \[B, 4\]"):
            bb(z, torch.zeros(2, 4))

    @unittest.skipUnless(em.HAS_SDPA, "torch < 2.0 has no scaled_dot_product_attention")
    def test_sdpa_attention_matches_math(self):
        sd = tiny_state("backbone_state_dict.pth")
        fused = em.Backbone(**em.TINY_BACKBONE, attention="sdpa").eval()
        fused.load_state_dict(sd, strict=True)
        z, t = load_npy("backbone_z.npy"), load_npy("backbone_t.npy")
        with torch.no_grad():
            torch.testing.assert_close(torch.jit.script(fused)(z, t), eager_tiny_backbone()(z, t),
                                       rtol=1e-4, atol=1e-4)

    def test_bfloat16_module(self):
        bb = torch.jit.load(os.path.join(TINY["models"], "backbone.pt"))
        z, t = load_npy("backbone_z.npy"), load_npy("backbone_t.npy")
        ref = load_npy("backbone_out.npy")
        bb = bb.to(torch.bfloat16)
        with torch.no_grad():
            out = bb(z.to(torch.bfloat16), t)
            out32 = bb(z, t)  # a float32 input to a bf16 module comes back float32
        self.assertEqual(out.dtype, torch.bfloat16)
        self.assertEqual(out32.dtype, torch.float32)
        self.assertLess(float((out.float() - ref).abs().mean()), 0.05)


# ---------------------------------------------------------------------------------------
# Further exports: determinism, checkpoint round trip, bad checkpoints.
# ---------------------------------------------------------------------------------------


class Reexport(unittest.TestCase):
    def out(self, name):
        return os.path.join(WORK, name)

    def run_ok(self, *args):
        proc = export(*args, "--quiet")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, "")  # --quiet
        return proc

    def test_same_seed_same_models_other_seed_different(self):
        self.run_ok("--tiny", "--seed", str(TINY_SEED), "--out", self.out("same"),
                    "--save-state-dicts", self.out("same"))
        self.run_ok("--tiny", "--seed", str(TINY_SEED + 1), "--out", self.out("other"),
                    "--save-state-dicts", self.out("other"))
        for name in ("backbone_state_dict.pth", "autoencoder_state_dict.pth"):
            a = tiny_state(name)
            b = torch.load(os.path.join(self.out("same"), name))
            c = torch.load(os.path.join(self.out("other"), name))
            self.assertEqual(list(a), list(b))
            for k in a:
                self.assertTrue(torch.equal(a[k], b[k]), k)
            differing = [k for k in a if not torch.equal(a[k], c[k])]
            # Everything randomly initialised differs (norms start at 1 and 0, biases of
            # default-initialised layers are random too).
            self.assertGreater(len(differing), len(a) // 3, name)
        # Same seed, same script: byte-identical files.
        for name in ("backbone.pt", "autoencoder.pt"):
            self.assertEqual(sha256(os.path.join(TINY["models"], name)),
                             sha256(os.path.join(self.out("same"), name)), name)

    def test_checkpoint_round_trip(self):
        out = self.out("round_trip")
        self.run_ok("--backbone", os.path.join(TINY["state"], "backbone_state_dict.pth"),
                    "--autoencoder", os.path.join(TINY["state"], "autoencoder_state_dict.pth"),
                    "--num-heads", "2", "--out", out)
        with open(os.path.join(out, "copgen.json")) as f:
            manifest = json.load(f)
        with open(os.path.join(TINY["models"], "copgen.json")) as f:
            tiny = json.load(f)
        self.assertEqual(manifest["backbone"]["source"], "backbone_state_dict.pth")
        self.assertEqual(manifest["autoencoder"]["source"], "autoencoder_state_dict.pth")
        for part, keys in (("backbone", ("embed_dim", "depth", "num_heads", "patch_size",
                                         "num_modalities", "parameters")),
                           ("autoencoder", ("ch", "ch_mult", "num_res_blocks", "z_channels",
                                            "embed_dim", "parameters"))):
            for key in keys:
                self.assertEqual(manifest[part][key], tiny[part][key], f"{part}.{key}")
        self.assertEqual(manifest["latent_shape"], [4, 32, 32])
        self.assertEqual(manifest["image_size"], 256)
        bb = torch.jit.load(os.path.join(out, "backbone.pt"))
        ae = torch.jit.load(os.path.join(out, "autoencoder.pt"))
        with torch.no_grad():
            # Same weights; the fixtures come from the eager modules, hence a tolerance.
            torch.testing.assert_close(bb(load_npy("backbone_z.npy"), load_npy("backbone_t.npy")),
                                       load_npy("backbone_out.npy"), rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(ae.decode(load_npy("ae_z.npy")),
                                       load_npy("ae_decoded.npy"), rtol=1e-5, atol=1e-5)

    def test_wrapped_checkpoints_load(self):
        path_bb = self.out("wrapped_backbone.pth")
        path_ae = self.out("wrapped_autoencoder.pth")
        torch.save({"state_dict": {"module." + k: v for k, v in
                                   tiny_state("backbone_state_dict.pth").items()}}, path_bb)
        torch.save({"model": tiny_state("autoencoder_state_dict.pth"), "step": 3}, path_ae)
        out = self.out("wrapped")
        self.run_ok("--tiny", "--backbone", path_bb, "--autoencoder", path_ae, "--out", out)
        bb = torch.jit.load(os.path.join(out, "backbone.pt"))
        with torch.no_grad():
            torch.testing.assert_close(bb(load_npy("backbone_z.npy"), load_npy("backbone_t.npy")),
                                       load_npy("backbone_out.npy"), rtol=1e-5, atol=1e-5)

    def assert_fails_naming(self, args, *needles):
        out = self.out("bad-" + str(abs(hash(tuple(args)))))
        proc = export(*args, "--out", out)
        self.assertNotEqual(proc.returncode, 0)
        for needle in needles:
            self.assertIn(needle, proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "copgen.json")))

    def test_bad_checkpoints_fail_with_the_key_named(self):
        sd = tiny_state("backbone_state_dict.pth")
        sd["in_blocks.1.attn.qkv_renamed.weight"] = sd.pop("in_blocks.1.attn.qkv.weight")
        renamed = self.out("renamed_backbone.pth")
        torch.save(sd, renamed)
        self.assert_fails_naming(["--tiny", "--backbone", renamed], renamed,
                                 "in_blocks.1.attn.qkv.weight",
                                 "in_blocks.1.attn.qkv_renamed.weight")

        sd = tiny_state("autoencoder_state_dict.pth")
        del sd["decoder.up.2.block.1.conv2.bias"]
        missing = self.out("missing_autoencoder.pth")
        torch.save(sd, missing)
        self.assert_fails_naming(["--tiny", "--autoencoder", missing], missing,
                                 "decoder.up.2.block.1.conv2.bias")

        # --embed-dim that disagrees with the checkpoint's shapes.
        self.assert_fails_naming(
            ["--backbone", os.path.join(TINY["state"], "backbone_state_dict.pth"),
             "--num-heads", "2", "--embed-dim", "128"], "--embed-dim 128", "embed_dim 64")


if __name__ == "__main__":
    unittest.main()
