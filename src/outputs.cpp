#include "copgen/outputs.hpp"

#include <filesystem>

#include "copgen/error.hpp"
#include "text.hpp"

namespace copgen {

namespace fs = std::filesystem;

// ---- the outputs of a run ------------------------------------------------------------

std::vector<std::string> band_descriptions(Modality m) {
  switch (m) {
    case Modality::DEM: return {"hillshade", "hillshade", "hillshade"};
    case Modality::S1RTC: return {"VV (dB, stretched)", "VV+VH (stretched)", "VH (dB, stretched)"};
    case Modality::S2L1C:
    case Modality::S2L2A: return {"B04 (red)", "B03 (green)", "B02 (blue)"};
  }
  return {};
}

std::string insert_sample_suffix(const std::string& path, int k, int n) {
  if (n <= 1) return path;
  const fs::path p(path);
  const std::string suffix = "_s" + std::to_string(k);
  return (p.parent_path() / (p.stem().string() + suffix + p.extension().string())).string();
}

void validate(const OutputOptions& o) {
  if (o.path.empty()) throw UsageError("-o/--output: an output path is required");
  if (o.format != "GTiff" && o.format != "COG") {
    throw UsageError("--format: unknown format '" + o.format + "' (expected GTiff or COG)");
  }
  if (!o.preview.empty()) check_preview_name(o.preview, "--preview");
}

void check_stac_item_name(const std::string& path, const std::string& flag) {
  if (detail::ends_with_ci(path, ".json") || detail::ends_with_ci(path, ".geojson")) return;
  throw UsageError(flag + " '" + path + "': a STAC item is JSON; name it with .json");
}

void check_preview_name(const std::string& path, const std::string& flag) {
  if (detail::ends_with_ci(path, ".png")) return;
  throw UsageError(flag + " '" + path + "': a preview is a PNG picture; name it with .png");
}

namespace {

// "<stem>_<name><ext>" of path: a summary beside the image it summarises.
std::string summary_path(const std::string& image, const std::string& name) {
  const fs::path base(image);
  return (base.parent_path() / (base.stem().string() + "_" + name + base.extension().string())).string();
}

}  // namespace

OutputPlan plan_outputs(const OutputOptions& o, int samples, const std::vector<Modality>& generated,
                        const std::vector<Modality>& saved_latent_modalities, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& summaries) {
  OutputPlan plan;
  plan.gate = OutputGate(inputs, o.overwrite);
  // -o out/, an existing folder or several outputs: the folder is made if missing
  const bool dir_mode = o.path.find("{modality}") == std::string::npos &&
                        (o.path.back() == '/' || fs::is_directory(o.path) || generated.size() > 1);
  if (dir_mode) plan.gate.allow_new_dirs(o.path);
  if (!o.save_latents_dir.empty()) plan.gate.allow_new_dirs(o.save_latents_dir);
  for (int k = 0; k < samples; ++k) {
    std::vector<std::string> row;
    for (Modality m : generated) {
      const std::string p = output_path(o.path, generated, m, k, samples);
      check_output_extension(p, "-o");
      row.push_back(plan.gate.add(p, FileKind::Image, "-o"));
    }
    plan.images.push_back(row);
    std::vector<std::string> lrow(kNumModalities);
    if (!o.save_latents_dir.empty()) {
      for (Modality m : saved_latent_modalities) {
        const std::string p = insert_sample_suffix(
            (fs::path(o.save_latents_dir) / (modality_name(m) + ".npy")).string(), k, samples);
        lrow[static_cast<size_t>(modality_index(m))] = plan.gate.add(p, FileKind::Latent, "--save-latents");
      }
    }
    plan.latents.push_back(lrow);
  }
  for (Modality m : generated) {
    std::vector<std::string> row;
    for (const std::string& name : summaries) {
      row.push_back(plan.gate.add(summary_path(output_path(o.path, generated, m, 0, 1), name), FileKind::Summary,
                                  "--summary " + name));
    }
    plan.summaries.push_back(row);
  }
  if (!o.stac_item.empty()) {
    check_stac_item_name(o.stac_item, "--stac-out");
    plan.stac_item = plan.gate.add(o.stac_item, FileKind::StacItem, "--stac-out");
  }
  if (!o.preview.empty()) {
    check_preview_name(o.preview, "--preview");
    plan.preview = plan.gate.add(o.preview, FileKind::Preview, "--preview");
  }
  return plan;
}

std::string output_path(const std::string& output, const std::vector<Modality>& modalities,
                        Modality modality, int k, int n) {
  std::string path;
  const auto pos = output.find("{modality}");
  if (pos != std::string::npos) {
    path = output;
    for (auto p = path.find("{modality}"); p != std::string::npos; p = path.find("{modality}")) {
      path.replace(p, 10, modality_name(modality));
    }
  } else if (output.back() == '/' || fs::is_directory(output) || modalities.size() > 1) {
    if (modalities.size() > 1 && output.back() != '/' && !fs::is_directory(output) &&
        fs::path(output).has_extension()) {
      throw UsageError("-o '" + output + "': " + std::to_string(modalities.size()) +
                       " modalities are generated (" + join_modalities(modalities) +
                       "); give a directory or a pattern with {modality}");
    }
    path = (fs::path(output) / (modality_name(modality) + ".tif")).string();
  } else {
    path = output;
  }
  return insert_sample_suffix(path, k, n);
}

}  // namespace copgen
