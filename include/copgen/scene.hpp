// Scene inputs of any size: the scene flags (SceneOptions), what each input holds
// (resolve_input: physical bands or a thumbnail, from files, a product folder or a STAC
// item), the one grid they are aligned onto (scene_grid) and their rendering the way
// Major TOM rendered its thumbnails (render_to_file). The phases that encode, sample and
// write a scene window by window are scene_pipeline.hpp's.
//
//   copgen::ModalityInput in = copgen::resolve_input(copgen::Modality::S2L2A, "B04.tif,B03.tif,B02.tif",
//                                                    copgen::InputKind::Auto);
//   copgen::Grid grid = copgen::scene_grid({in}, options);   // 10 m pixels unless --target-res
//   copgen::render_to_file(in, grid, "work/S2L2A.tif", options);
//
// Memory grows with the latent canvas (1/8 of the scene per side) and the batch of
// windows, not with the scene: inputs are rendered to a temporary tiled GeoTIFF and read
// back window by window, outputs are written window by window.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "copgen/modality.hpp"
#include "copgen/raster_scene.hpp"

namespace copgen {

enum class InputKind { Auto, Thumbnail, Physical };
std::string input_kind_name(InputKind k);
InputKind parse_input_kind(const std::string& s);  // throws UsageError naming --input-kind

enum class Tiling {
  Fused,        // all windows advance together; overlapping predictions averaged every call
  Independent,  // each window sampled alone, latents blended with feathered weights
};
std::string tiling_name(Tiling t);
Tiling parse_tiling(const std::string& s);  // throws UsageError naming --tiling

enum class OutputKind { Thumbnail, Physical };
OutputKind parse_output_kind(const std::string& s);  // throws UsageError naming --output-kind

// --s2-offset: whether Sentinel-2 digital numbers carry the +1000 of processing baseline
// 04.00 (products from 2022-01-25). Auto reads it per input from what the input says (a
// STAC item's properties and assets, the band files' GDAL offset, scale and metadata) and
// assumes none where nothing says; On and Off force it (docs/scenes.md).
enum class S2Offset { Auto, On, Off };
std::string s2_offset_name(S2Offset m);
S2Offset parse_s2_offset(const std::string& s);  // throws UsageError naming --s2-offset

// --extent: "intersection" (false) or "union" (true); throws UsageError naming --extent.
bool parse_union_extent(const std::string& s);

// --mosaic-order: how several inputs of one modality (a mosaic: --input MOD=A --input
// MOD=B) are stacked where they overlap. Listed: the first given is on top, each later
// one fills only where those above are nodata or outside. Recent: the most recent
// (ModalityInput::datetime) on top; every part must carry a date (docs/scenes.md).
enum class MosaicOrder { Listed, Recent };
std::string mosaic_order_name(MosaicOrder m);
MosaicOrder parse_mosaic_order(const std::string& s);  // throws UsageError naming --mosaic-order

struct SceneOptions {
  InputKind input_kind = InputKind::Auto;  // --input-kind
  Tiling tiling = Tiling::Fused;           // --tiling
  int overlap = 64;                        // --overlap, pixels (a multiple of 8, below 256)
  std::optional<Modality> grid_from;       // --grid-from: the input whose grid is used
  std::string target_crs;                  // --target-crs
  std::optional<double> target_resolution; // --target-res, metres; unset: 10, or with --grid-from
                                           // that input's own pixels (its grid exactly)
  bool union_extent = false;               // --extent union (default: intersection)
  std::optional<std::array<double, 4>> projwin;  // --projwin ULX ULY LRX LRY: part of the grid, as gdal_translate
  std::string projwin_srs;                 // --projwin-srs: the CRS of --projwin (default: the grid's)
  std::optional<PixelWindow> srcwin;       // --srcwin XOFF YOFF XSIZE YSIZE: part of the grid, in its pixels
  std::map<std::string, std::string> assets;  // --asset ROLE=KEY: the STAC asset of a band role
  bool fill_nodata = false;                // --fill-nodata: generate where inputs are nodata
  S2Offset s2_offset = S2Offset::Auto;     // --s2-offset (--l2a-offset: on): DN offset of S2L1C and S2L2A inputs
  MosaicOrder mosaic_order = MosaicOrder::Listed;  // --mosaic-order: several inputs of one modality
  OutputKind output_kind = OutputKind::Thumbnail;  // --output-kind
  bool summary_mean = false;               // --summary mean
  bool summary_std = false;                // --summary std
};

// --summary: "mean", "std" or "mean,std" into options.summary_mean / summary_std;
// throws UsageError naming --summary.
void parse_summary(const std::string& s, SceneOptions& options);

// True when the options ask for what only the scene path does, whatever the inputs:
// physical outputs, per-pixel summaries, a region of interest (--projwin, --srcwin).
bool needs_scene_path(const SceneOptions& options);

// Validates the scene flags (naming the flag); throws UsageError.
void validate(const SceneOptions& options);
// Also refuses flags that cannot apply to a run generating `generated` with `samples`
// samples per input: --output-kind physical without an S2 output, --summary with one.
void validate(const SceneOptions& options, const std::vector<Modality>& generated, int samples);

// One modality's input resolved to files: a thumbnail, or the physical bands (S2: B04,
// B03, B02; S1: VV, VH; DEM: elevation), each (file, band) pair.
// How an S1 input's values are scaled (ASF RTC products say it in their names).
enum class S1Scale { Power, Decibel, Amplitude };

struct ModalityInput {
  Modality modality;
  std::string label;  // the path as given
  InputKind kind = InputKind::Thumbnail;
  std::vector<std::string> files;  // one per band or a single multi-band file
  std::vector<int> bands;          // 1-based band in the corresponding file (files.size() == bands.size()),
                                   // or all three bands of files[0] for a thumbnail
  double dn_offset = 0.0;          // S2 physical bands: DNs subtracted before rendering (1000 or 0)
  std::string offset_source;       // where dn_offset was read ("none": nothing said); empty when
                                   // not S2 physical bands
  S1Scale s1_scale = S1Scale::Power;  // S1 physical bands: the values' scale (rendered from power)
  std::optional<double> nodata;    // the value its product names no data where the band files set
                                   // none (a SAFE product's NODATA, 0); unset: the files' own
  std::string datetime;            // when it was acquired, "YYYY-MM-DDTHH:MM:SS" (UTC, as written): a STAC
                                   // item's datetime (or start_datetime), else a product name's
                                   // _YYYYMMDDTHHMMSS_; empty when nothing says
  // A mosaic (mosaic_input): its parts, top first; then files/bands are all the parts'
  // (for the output gate and provenance only), dn_offset the largest part's, label the
  // parts' labels joined with " + ". Empty for one input.
  std::vector<ModalityInput> parts;
};

// Finds out what `path` holds for `modality`: a Major TOM product folder, a multi-band
// file with named (B04/B03/B02, VV/VH) or ordered bands, single-band files joined with
// ',' (S2: "B04.tif,B03.tif,B02.tif"; S1: "vv.tif,vh.tif"), a 3-band Byte thumbnail, or a
// STAC item (stac.hpp: its assets for the modality, `assets` overriding by band role).
// The detected kind is logged. For S2 physical bands the DN offset is resolved by
// `offset` (S2Offset), logged and kept in dn_offset / offset_source.
// Throws InputError naming the path and what was found.
ModalityInput resolve_input(Modality modality, const std::string& path, InputKind requested,
                            const std::map<std::string, std::string>& assets = {},
                            S2Offset offset = S2Offset::Auto);

// Several inputs of one modality as one mosaic input: their order (mosaic_order_of) top
// first. Throws InputError when the parts mix thumbnails and physical bands or are of
// different modalities, UsageError for --mosaic-order recent and a part without a date.
// Logs the order.
ModalityInput mosaic_input(std::vector<ModalityInput> parts, MosaicOrder order);

// The indices of `parts` top first: as listed, or by datetime, the most recent first
// (equal dates as listed). Throws UsageError for `recent` when a part has no datetime.
std::vector<std::size_t> mosaic_order_of(const std::vector<ModalityInput>& parts, MosaicOrder order);

// What each part of a mosaic covers of a grid, counted while it is rendered: `covered`,
// its valid pixels; `shown`, those where it is the top valid part.
struct MosaicCoverage {
  std::int64_t pixels = 0;           // pixels counted
  std::vector<std::int64_t> covered;  // per part, top first
  std::vector<std::int64_t> shown;
  // Adds a window: each part's validity [h, w] (bool), top first; returns where any is valid.
  torch::Tensor add(const std::vector<torch::Tensor>& valid);
};

// The log line of a mosaic's coverage, e.g. "S2L2A: 2 items cover the region: 'a.json#A'
// (61.0% of the region; on top in 61.0%), 'a.json#B' (45.0%; on top in 39.0%)".
std::string describe_coverage(const ModalityInput& mosaic, const MosaicCoverage& coverage);

// The COPGEN_MOSAIC metadata item of the mosaics among `inputs`, e.g. "S2L2A: 'A' over 'B'
// (--mosaic-order listed)"; inputs separated by "; ", empty when none is a mosaic.
std::string mosaic_record(const std::vector<ModalityInput>& inputs, MosaicOrder order);

// The offset items of S2 inputs for an output's metadata, e.g. "S2L2A:1000
// (s2:processing_baseline 05.10 >= 04.00)", inputs separated by "; "; empty when no S2
// input has physical bands.
std::string s2_offset_record(const std::vector<ModalityInput>& inputs);

// True when the Major TOM product folder `dir` holds a file for every physical band of
// `modality` (what resolve_input reads from it unless --input-kind thumbnail).
bool has_band_files(const std::string& dir, Modality modality);

// Renders `input` onto `grid` as the 8-bit thumbnail the model sees and writes it to
// `path` (a 3-band Byte GeoTIFF with an internal validity mask). Statistics (S1 dB range,
// hillshade range) are taken per scene, or per 1068-pixel cell for larger scenes.
// Returns the number of valid pixels: not nodata, not NaN or infinite, inside the input.
// A mosaic is combined in the physical domain (each part's S2 DN offset subtracted, S1 as
// linear power; a DEM's parts warped onto one grid of the top part's pixel size), then
// rendered once; its coverage (describe_coverage) is logged, a part covering nothing of
// the grid warned of, and both recorded (COPGEN_MOSAIC).
std::int64_t render_to_file(const ModalityInput& input, const Grid& grid, const std::string& path,
                            const SceneOptions& options, const std::string& format = "GTiff", bool overwrite = true);

// The target grid of resolved inputs: choose_grid's (raster_scene.hpp), with the
// --grid-from input as the reference, else the first input of 10 m pixels, else the
// first; cut to --projwin or --srcwin when given. A mosaic counts as one input: the union
// of its parts (in its top part's CRS and pixels), whatever --extent says. Throws UsageError for a --grid-from
// modality that is not an input, and choose_grid's errors.
Grid scene_grid(const std::vector<ModalityInput>& inputs, const SceneOptions& options);

}  // namespace copgen
