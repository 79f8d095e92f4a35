// Outputs: where the images of translate and generate go (output_path, plan_outputs:
// every file of a run planned in one OutputGate, files.hpp) and the band descriptions
// they carry; their provenance items are provenance.hpp's. Plain file work: no GDAL,
// no torch.
//
//   copgen::OutputPlan plan = copgen::plan_outputs(o.output, 1, {Modality::S2L2A}, {}, {"l1c.tif"});
//   plan.gate.make_dirs();               // then write plan.images[0][0], plan.stac_item
#pragma once

#include <string>
#include <vector>

#include "copgen/files.hpp"
#include "copgen/modality.hpp"

namespace copgen {

// ---- the outputs of a run ------------------------------------------------------------

// Where a run writes its images: translate and generate; batch takes the folder and the
// format (the per-tuple layout is its own).
struct OutputOptions {
  std::string path;              // -o: file, directory, or pattern with {modality}
  std::string format = "GTiff";  // --format: GTiff or COG
  std::string save_latents_dir;  // --save-latents: also write latents as .npy
  bool overwrite = false;        // --overwrite: replace existing outputs
  std::string stac_item;         // --stac-out: also a STAC item describing the outputs (stac.hpp);
                                 // in batch mode the file name, beside each tuple's outputs
  std::string preview;           // --preview: also a PNG picture of the run (previews.hpp); not in batch mode
};
// -o given, a known --format; throws UsageError naming the flag.
void validate(const OutputOptions& options);

// The output file of `modality`, sample k of n, for an -o of `output` when `modalities`
// are generated: a pattern's {modality} is replaced; a directory (existing, ending in
// '/', or several modalities) gets "<MODALITY>.tif"; a file name is used as is. With
// n > 1 "_s<k>" goes before the extension. Throws UsageError for a single file name
// with several modalities.
std::string output_path(const std::string& output, const std::vector<Modality>& modalities,
                        Modality modality, int k, int n);

// "<stem>_s<k><ext>" when n > 1, else path.
std::string insert_sample_suffix(const std::string& path, int k, int n);

// The band descriptions an output of modality m carries (the thumbnail's renderings).
std::vector<std::string> band_descriptions(Modality m);

// Checks a --stac-out path's name: UsageError unless it ends in .json or .geojson (any case), so that
// no tool takes the item for a raster.
void check_stac_item_name(const std::string& path, const std::string& flag);

// Checks a --preview path's name: UsageError unless it ends in .png (any case).
void check_preview_name(const std::string& path, const std::string& flag);

// Every file a translate or generate run writes, planned in one gate.
struct OutputPlan {
  std::vector<std::vector<std::string>> images;     // [sample][generated modality]
  std::vector<std::vector<std::string>> latents;    // [sample][modality index], "" when not saved
  std::vector<std::vector<std::string>> summaries;  // [generated modality][summary], per-pixel statistics
  std::string stac_item;                            // --stac-out, "" when not asked for
  std::string preview;                              // --preview, "" when not asked for
  OutputGate gate;  // every path above, checked; gate.make_dirs() before the first write
};
// Resolves and checks every output path of a run before any work, through one OutputGate
// (files.hpp): the images (a .tif name), the latents, the summaries ("<stem>_<name><ext>"
// beside the first sample's image, for each of `summaries`: "mean", "std") and the STAC
// item and the --preview picture, against each other and against `inputs` (the paths as given: files, band lists,
// product folders, STAC references). Makes nothing: gate.make_dirs() does, when the run
// goes ahead (not for --dry-run).
OutputPlan plan_outputs(const OutputOptions& o, int samples, const std::vector<Modality>& generated,
                        const std::vector<Modality>& saved_latent_modalities, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& summaries = {});

}  // namespace copgen
