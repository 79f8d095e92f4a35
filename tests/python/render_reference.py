#!/usr/bin/python3
"""Reference Major TOM thumbnail renderings for copgen's C++ render tests.

    /usr/bin/python3 tests/python/render_reference.py --seed 3 --out <dir>

Makes synthetic physical bands and renders them with numpy, written here independently
from shared/reference/majortom.md in the way Major TOM's numpy code computes them
(uint16 S2 DNs -> float64; float32 S1 stays float32; float32 DEM gradients in float32,
matplotlib's normals in float64). Everything goes to <dir> as .npy; copgen's read_npy
reads float32, so uint8 renderings are stored as float32 arrays of whole numbers (S2 DNs
up to 65535 are exact in float32 too).

Files:
  s2_dn.npy            [3, 256, 256] every DN 0..65535 once per band (B04, B03, B02)
  s2_l1c.npy           its rendering, offset 0
  s2_l2a_dn.npy        [3, 256, 256] L2A DNs with the +1000 offset (0..65535, some < 1000)
  s2_l2a.npy           its rendering, offset 1000 subtracted first
  s1_vv.npy, s1_vh.npy [H, W] float32 linear power, nodata -32768, some negative values
  s1.npy               [3, H, W] rendering, float32 log10 correctly rounded
  s1_numpy_log10.npy   the same with numpy's own float32 log10 (machine dependent)
  dem.npy              [H, W] float32 elevation: gentle terrain, a flat area, a cliff
  dem_hillshade.npy    its float64 hillshade in [0, 1]
  dem_render.npy       [3, H, W] its rendering
  dem_holed.npy        the same with a nodata hole of -9999
  dem_valid.npy        0/1 mask: 0 on the hole
  dem_holed_render.npy its rendering: one-sided gradients beside the hole, stretched by
                       the valid pixels only
  dem_cell_*.npy       30 m DEMs and their 10 m Major TOM thumbnails (grey [H, W]): exact
                       (the DEM is the area), past (the area is rows 20..109, columns
                       30..129), nodata (-9999; *_valid marks the valid output pixels)
  dem_cells*.npy       a 400 x 500 DEM and its 1200 x 1500 scene, cell by cell
"""

import argparse
import os

import numpy as np

NODATA = -32768.0


# ---- Sentinel-2 ------------------------------------------------------------------------

def render_s2(b04, b03, b02, offset=0):
    """uint16 bands -> uint8 [H, W, 3], v = 1.3 (DN / 10000)^0.6 as numpy computes it."""
    thumb = np.stack([b04, b03, b02], -1)
    if offset:
        # Subtract in a signed type: uint16 would wrap below the offset.
        thumb = np.maximum(thumb.astype(np.int64) - offset, 0)
    thumb = 1.3 * ((thumb / 10_000) ** 0.6)
    return (thumb.clip(0, 1) * 255).astype(np.uint8)


# ---- Sentinel-1 RTC --------------------------------------------------------------------

def log10_f32_rounded(x):
    """float32 log10, correctly rounded (numpy's float32 log10 may be 1 ulp off)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(x.astype(np.float64)).astype(np.float32)


def render_s1(vv, vh, log10=log10_f32_rounded):
    vv = vv.copy()
    vh = vh.copy()
    vv_mask = vv != NODATA
    vh_mask = vh != NODATA
    vv[vv < 0] = vv[vv >= 0].min()
    vh[vh < 0] = vh[vh >= 0].min()
    with np.errstate(divide="ignore", invalid="ignore"):
        vv_db = 10 * log10(vv)
        vh_db = 10 * log10(vh)
    assert vv_db.dtype == np.float32 and vh_db.dtype == np.float32
    vv_db = (vv_db - vv_db[vv_mask].min()) / (vv_db[vv_mask].max() - vv_db[vv_mask].min()) * 255
    vh_db = (vh_db - vh_db[vh_mask].min()) / (vh_db[vh_mask].max() - vh_db[vh_mask].min()) * 255
    vv_db[~vv_mask] = 0
    vh_db[~vh_mask] = 0
    total = vv_db + vh_db
    rgb = np.stack([vv_db, 255 * total / np.max(total), vh_db], -1)
    assert rgb.dtype == np.float32
    return rgb.astype(np.uint8)


# ---- DEM hillshade ---------------------------------------------------------------------

def gradient_of_runs(elevation, valid, axis, spacing):
    """numpy.gradient along `axis` applied to each run of valid pixels on its own, so that
    a run's ends get one-sided differences as the array's edges do; a run of one pixel
    gets 0, invalid pixels 0."""
    out = np.zeros_like(elevation)
    e = np.moveaxis(elevation, axis, 0)
    v = np.moveaxis(valid, axis, 0)
    o = np.moveaxis(out, axis, 0)
    for j in range(e.shape[1]):
        i = 0
        n = e.shape[0]
        while i < n:
            if not v[i, j]:
                i += 1
                continue
            k = i
            while k < n and v[k, j]:
                k += 1
            if k - i >= 2:
                o[i:k, j] = np.gradient(e[i:k, j], spacing)
            i = k
    return out


def hillshade(elevation, valid=None, azdeg=315.0, altdeg=45.0, vert_exag=1, dx=1, dy=1):
    """matplotlib LightSource(azdeg, altdeg).hillshade(elevation, vert_exag, dx, dy)
    semantics; pixels outside `valid` end the data as the array's edges do (each run of
    valid pixels gets its own numpy.gradient), and only valid pixels set the min-max
    stretch."""
    dy = -dy  # the first row is the top of the image
    if valid is None:
        e_dy, e_dx = np.gradient(vert_exag * elevation, dy, dx)
    else:
        e_dy = gradient_of_runs(vert_exag * elevation, valid, 0, dy)
        e_dx = gradient_of_runs(vert_exag * elevation, valid, 1, dx)
    normal = np.empty(elevation.shape + (3,))  # float64 whatever the elevation's dtype
    normal[..., 0] = -e_dx
    normal[..., 1] = -e_dy
    normal[..., 2] = 1
    length = np.sqrt(normal[..., 0] ** 2 + normal[..., 1] ** 2 + normal[..., 2] ** 2)
    normal /= length[..., np.newaxis]
    az = np.radians(90 - azdeg)
    alt = np.radians(altdeg)
    light = np.array([np.cos(az) * np.cos(alt), np.sin(az) * np.cos(alt), np.sin(alt)])
    intensity = normal.dot(light)
    sel = intensity if valid is None else intensity[valid]
    imin, imax = sel.min(), sel.max()
    if imax - imin > 1e-6:
        intensity = (intensity - imin) / (imax - imin)
    return np.clip(intensity, 0, 1)


def render_dem(elevation, valid=None):
    grey = (hillshade(elevation, valid) * 255).astype(np.uint8)
    return np.stack([grey, grey, grey])


def resize_bilinear(image, out_h, out_w, scale):
    """Pixel-centred bilinear resize of a 2-D array (edges clamped): output pixel (i, j)
    samples the input at ((i + 0.5) * scale - 0.5, (j + 0.5) * scale - 0.5)."""
    h, w = image.shape
    v = np.clip((np.arange(out_h) + 0.5) * scale - 0.5, 0, h - 1)
    u = np.clip((np.arange(out_w) + 0.5) * scale - 0.5, 0, w - 1)
    v0 = np.floor(v).astype(int)
    u0 = np.floor(u).astype(int)
    v1 = np.minimum(v0 + 1, h - 1)
    u1 = np.minimum(u0 + 1, w - 1)
    fv = (v - v0)[:, None]
    fu = (u - u0)[None, :]
    img = image.astype(np.float64)
    return (img[v0][:, u0] * (1 - fu) * (1 - fv) + img[v0][:, u1] * fu * (1 - fv)
            + img[v1][:, u0] * (1 - fu) * fv + img[v1][:, u1] * fu * fv)


def dem_cell_thumbnail(dem, valid=None, scale=3):
    """Major TOM's DEM thumbnail of one cell at 10 m from the cell's DEM at 10 * scale m:
    the hillshade at the DEM's resolution, then resized. Returns grey uint8 [H, W] and,
    with `valid`, where all four DEM pixels of the bilinear are valid."""
    grey = render_dem(dem, valid)[0]
    h, w = dem.shape[0] * scale, dem.shape[1] * scale
    out = np.floor(resize_bilinear(grey, h, w, 1.0 / scale) + 0.5).clip(0, 255).astype(np.uint8)
    ok = None if valid is None else resize_bilinear(valid.astype(np.float64), h, w, 1.0 / scale) > 0.999
    return out, ok


# ---- fixtures ----------------------------------------------------------------------------

def s1_band(rng, h, w, lo_db, hi_db):
    band = (10.0 ** (rng.uniform(lo_db, hi_db, (h, w)) / 10.0)).astype(np.float32)
    negative = rng.random((h, w)) < 0.02
    band[negative] = -rng.uniform(1e-4, 0.5, negative.sum()).astype(np.float32)
    band[rng.random((h, w)) < 0.05] = NODATA
    band[:7, -9:] = NODATA  # a nodata block in a corner
    return band


def dem_fixture(rng, h, w):
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    # Gentle hills (at most a few metres per pixel) with noise, so that the hole's walls
    # in dem_holed.npy reach beyond the terrain's own range of intensities.
    z = (600.0 + 9.0 * np.sin(rows / 9.0) * np.cos(cols / 13.0) + 0.4 * rows - 0.25 * cols
         + rng.normal(0.0, 0.3, (h, w)))
    z[20:45, 30:70] = np.round(z[20:45, 30:70].mean())  # a flat area
    z[60:, 80:] += 150.0             # a cliff
    return z.astype(np.float32)


def save(out, name, array):
    np.save(os.path.join(out, name), np.ascontiguousarray(array))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)

    # S2: every DN of uint16 in every band (so 0, saturation at 255 and above), in a
    # different order per band.
    dn = np.arange(65536, dtype=np.uint16)
    bands = [dn, dn[::-1], rng.permutation(dn)]
    bands = [b.reshape(256, 256) for b in bands]
    s2 = render_s2(*bands)
    save(args.out, "s2_dn.npy", np.stack(bands).astype(np.float32))
    save(args.out, "s2_l1c.npy", s2.transpose(2, 0, 1).astype(np.float32))
    l2a = [rng.permutation(dn).reshape(256, 256) for _ in range(3)]
    save(args.out, "s2_l2a_dn.npy", np.stack(l2a).astype(np.float32))
    save(args.out, "s2_l2a.npy", render_s2(*l2a, offset=1000).transpose(2, 0, 1).astype(np.float32))

    # S1: log-uniform power, some negative values, scattered nodata and a nodata block.
    h, w = 96, 120
    vv = s1_band(rng, h, w, -25.0, 5.0)
    vh = s1_band(rng, h, w, -32.0, -5.0)
    save(args.out, "s1_vv.npy", vv)
    save(args.out, "s1_vh.npy", vh)
    save(args.out, "s1.npy", render_s1(vv, vh).transpose(2, 0, 1).astype(np.float32))
    native = render_s1(vv, vh, log10=np.log10)
    save(args.out, "s1_numpy_log10.npy", native.transpose(2, 0, 1).astype(np.float32))

    # DEM: float32 elevation in metres.
    dem = dem_fixture(rng, 90, 110)
    save(args.out, "dem.npy", dem)
    save(args.out, "dem_hillshade.npy", hillshade(dem))
    save(args.out, "dem_render.npy", render_dem(dem).astype(np.float32))
    holed = dem.copy()
    holed[50:58, 10:25] = -9999.0
    valid = holed != -9999.0
    save(args.out, "dem_holed.npy", holed)
    save(args.out, "dem_valid.npy", valid.astype(np.float32))
    save(args.out, "dem_holed_render.npy", render_dem(holed, valid).astype(np.float32))

    # DEM scenes at 30 m rendered onto 10 m grids (tests/unit/test_render.cpp writes the
    # GeoTIFFs): a DEM that is exactly the area, one that extends past it, one with nodata,
    # and a scene of several 1068-pixel cells, each cell rendered from its own DEM.
    exact = dem_fixture(rng, 90, 100)
    save(args.out, "dem_cell_exact.npy", exact)
    save(args.out, "dem_cell_exact_render.npy", dem_cell_thumbnail(exact)[0].astype(np.float32))
    past = dem_fixture(rng, 130, 150)
    save(args.out, "dem_cell_past.npy", past)
    save(args.out, "dem_cell_past_render.npy",
         dem_cell_thumbnail(past[20:110, 30:130])[0].astype(np.float32))
    nodata = dem_fixture(rng, 90, 100)
    nodata[40:52, 20:35] = -9999.0  # a hole
    nodata[:, 95:] = -9999.0        # the DEM ends before the area's east edge
    nodata[70, 60] = -9999.0        # one pixel
    save(args.out, "dem_cell_nodata.npy", nodata)
    grey, ok = dem_cell_thumbnail(nodata, nodata != -9999.0)
    save(args.out, "dem_cell_nodata_render.npy", grey.astype(np.float32))
    save(args.out, "dem_cell_nodata_valid.npy", ok.astype(np.float32))
    cells = dem_fixture(rng, 400, 500)
    save(args.out, "dem_cells.npy", cells)
    scene = np.zeros((1200, 1500), dtype=np.uint8)
    for r0, r1 in ((0, 356), (356, 400)):        # 1068 pixels at 10 m are 356 at 30 m
        for c0, c1 in ((0, 356), (356, 500)):
            scene[r0 * 3:r1 * 3, c0 * 3:c1 * 3] = dem_cell_thumbnail(cells[r0:r1, c0:c1])[0]
    save(args.out, "dem_cells_render.npy", scene.astype(np.float32))


if __name__ == "__main__":
    main()
