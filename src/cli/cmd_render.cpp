// copgen render: what an input is rendered to, the thumbnail the model sees.
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "common.hpp"
#include "copgen/error.hpp"
#include "copgen/outputs.hpp"
#include "copgen/scene.hpp"

namespace copgen::cli {

namespace {
struct RenderFlags {
  std::string modality, output, input_kind = "auto", format = "GTiff", target_crs, mosaic_order = "listed";
  std::vector<std::string> inputs;
  double target_res = 10.0;
  CLI::Option* target_res_option = nullptr;
  bool overwrite = false;
  S2OffsetFlags offset;
  WindowFlags window;
};
}  // namespace

Command add_render(CLI::App& app, LogFlags& log) {
  auto f = std::make_shared<RenderFlags>();
  CLI::App* cmd = app.add_subcommand(
      "render", "Write the 8-bit thumbnail an input is rendered to (as Major TOM rendered), georeferenced");
  cmd->add_option("--modality", f->modality, "DEM, S1RTC, S2L1C or S2L2A")->required();
  cmd->add_option("-i,--input", f->inputs,
                  "Physical bands (file, 'B04.tif,B03.tif,B02.tif', 'vv.tif,vh.tif', product folder, SAFE product, STAC item) or a "
                  "thumbnail; repeated: a mosaic of the inputs on one grid (--mosaic-order)")
      ->required();
  cmd->add_option("-o,--output", f->output, "Output GeoTIFF")->required()->check(kOutputPath);
  cmd->add_option("--input-kind", f->input_kind, "auto, thumbnail or physical")->capture_default_str();
  cmd->add_option("--target-crs", f->target_crs,
                  "Target CRS, projected in metres (default: the input's; for an input in degrees the UTM/UPS "
                  "zone of its centre)");
  f->target_res_option =
      cmd->add_option("--target-res", f->target_res, "Target resolution in metres (default: 10, what the model sees)");
  add_window_flags(cmd, f->window, "Region of interest");
  cmd->add_option("--mosaic-order", f->mosaic_order,
                  "Several -i, where they overlap: listed (the first given on top) or recent (the most recent "
                  "item on top; each needs a date)")
      ->capture_default_str();
  add_s2_offset_flags(cmd, f->offset, "Options");
  cmd->add_option("--format", f->format, "GTiff or COG")->capture_default_str();
  cmd->add_flag("--overwrite", f->overwrite, "Replace an existing output");
  add_log_flags(cmd, log);
  cmd->footer(kExitCodes);
  return {cmd, [f]() {
            const Modality m = parse_modality(f->modality, "--modality");
            SceneOptions o;
            o.input_kind = parse_input_kind(f->input_kind);
            o.target_crs = f->target_crs;
            if (f->target_res_option->count() > 0) o.target_resolution = f->target_res;
            apply_window_flags(f->window, o);
            apply_s2_offset_flags(f->offset, o);
            o.mosaic_order = parse_mosaic_order(f->mosaic_order);
            validate(o);
            if (f->format != "GTiff" && f->format != "COG") {
              throw UsageError("--format: unknown format '" + f->format + "' (expected GTiff or COG)");
            }
            check_output_extension(f->output, "-o");
            std::vector<ModalityInput> parts;
            for (const std::string& i : f->inputs) parts.push_back(resolve_input(m, i, o.input_kind, {}, o.s2_offset));
            const ModalityInput in = mosaic_input(std::move(parts), o.mosaic_order);
            std::vector<std::string> inputs = in.files;
            inputs.insert(inputs.end(), f->inputs.begin(), f->inputs.end());
            OutputGate gate(inputs, f->overwrite);  // never an input, a device, an existing file
            gate.add(f->output, FileKind::Image, "-o");
            const Grid grid = scene_grid({in}, o);
            render_to_file(in, grid, f->output, o, f->format, f->overwrite);
            spdlog::info("wrote {} ({} x {}, {} rendering)", f->output, grid.width, grid.height, modality_name(m));
            return 0;
          }};
}

}  // namespace copgen::cli
