// Fuzzes the models manifest parser: any text must parse or throw copgen::ModelError.
#include <cstddef>
#include <cstdint>
#include <string>

#include "copgen/error.hpp"
#include "copgen/manifest.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const copgen::Manifest m = copgen::parse_manifest(text, "fuzz/copgen.json");
    // A manifest that parses must be usable: these feed divisions and shifts.
    if (m.backbone.patch_size < 1 || m.backbone.num_heads < 1 || m.latent_shape[1] < 1) __builtin_trap();
    (void)m.backbone_flops_per_call();
  } catch (const copgen::ModelError&) {
  }
  return 0;
}
