// Provenance: the metadata items every output of a sampling run carries, so that an image
// says which copgen, which models and which settings made it. translate, generate, scenes
// and batch write them into each image (raster_io's WriteOptions::metadata, a RasterSink's
// SinkSpec), and a STAC item of the outputs (stac.hpp) reads them back.
//
//   auto meta = copgen::run_metadata(o.sampling, 1, models, seed, "translate", given, roles);
//   meta["COPGEN_SEED"];     // "42"
//   meta["COPGEN_SOLVER"];   // "dpm-solver-fast"
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "copgen/conditioning.hpp"
#include "copgen/modality.hpp"
#include "copgen/models.hpp"
#include "copgen/tuples.hpp"

namespace copgen {

// The provenance items of a run's outputs: COPGEN_VERSION, the models (COPGEN_MODELS_SHA256,
// COPGEN_MODELS_SOURCE), `mode` ("translate", "generate", "batch"), the seed, the sampling
// settings of `s` (solver, steps, time grid, guidance scale, batch size, conditioning
// latent), the roles (COPGEN_GIVEN: `given_mods`, COPGEN_GENERATED and COPGEN_UNUSED: `roles`),
// `samples`, and the models' precisions (Models::settings_metadata).
std::map<std::string, std::string> run_metadata(const SamplingOptions& s, int samples, const Models& models,
                                                std::uint64_t seed, const std::string& mode,
                                                const std::vector<Modality>& given_mods, const Roles& roles);

}  // namespace copgen
