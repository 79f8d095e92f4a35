// Fuzzes the raster reader on in-memory files (/vsimem/): probe_raster and read_image_u8
// must return a consistent image or throw copgen::InputError, whatever the bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_vsi.h>
#include <spdlog/spdlog.h>

#include "copgen/error.hpp"
#include "copgen/raster_io.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  copgen::init_gdal();
  CPLSetConfigOption("CPL_DEBUG", "OFF");
  CPLSetConfigOption("GDAL_PAM_ENABLED", "NO");  // no .aux.xml side-cars
  CPLSetErrorHandler(CPLQuietErrorHandler);
  spdlog::set_level(spdlog::level::off);  // GDAL warnings are routed into the log
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const char* path = "/vsimem/fuzz.tif";
  // FALSE: GDAL does not take ownership; the buffer outlives the file.
  VSILFILE* f = VSIFileFromMemBuffer(path, const_cast<GByte*>(data), size, FALSE);
  if (f == nullptr) return 0;
  VSIFCloseL(f);
  try {
    const copgen::RasterInfo info = copgen::probe_raster(path, "fuzz input");
    const auto bytes = static_cast<std::uint64_t>(info.width) * static_cast<std::uint64_t>(info.height) *
                       static_cast<std::uint64_t>(info.bands);
    // Sizes between 64 MiB and copgen's limit are legal but too slow to fuzz; beyond the
    // limit read_image_u8 must refuse without allocating.
    if (bytes <= (std::uint64_t{64} << 20) || bytes > copgen::kMaxImageBytes) {
      const copgen::ImageU8 img = copgen::read_image_u8(path, "fuzz input");
      if (img.pixels.size() != static_cast<std::size_t>(img.width) * static_cast<std::size_t>(img.height) *
                                   static_cast<std::size_t>(img.bands))
        __builtin_trap();
    }
  } catch (const copgen::InputError&) {
  }
  VSIUnlink(path);
  return 0;
}
