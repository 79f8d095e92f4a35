// The test set of copgen eval: finding its tuples and reading one of its files.
#include "copgen/evaluation.hpp"

#include <filesystem>

#include "copgen/error.hpp"
#include "copgen/inputs.hpp"
#include "copgen/pixels.hpp"
#include "copgen/raster_io.hpp"
#include "text.hpp"

namespace copgen {

namespace fs = std::filesystem;
using detail::ends_with_ci;

// ---- the test set -------------------------------------------------------------------------

namespace {

// The thumbnail of a Major TOM product folder (inputs.hpp's rule).
std::string find_thumbnail(const std::string& product_dir, Modality m) {
  const std::string found = find_product_thumbnail(product_dir);
  if (found.empty()) {
    throw InputError(modality_name(m) + " product folder '" + product_dir + "' holds no *thumbnail.png");
  }
  return found;
}

}  // namespace

TestSet discover_test_set(const std::string& root, int limit) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw InputError("--test-set '" + root + "': not a directory");
  const std::vector<Modality> all(kAllModalities.begin(), kAllModalities.end());
  const Discovered d = discover_tuples(root, all);
  TestSet s;
  s.root = root;
  s.layout = d.layout;
  s.incomplete = static_cast<std::int64_t>(d.incomplete.size());
  s.warnings = d.warnings;
  for (const TupleSource& t : d.tuples) {
    if (limit > 0 && static_cast<int>(s.tuples.size()) >= limit) break;
    TestTuple tt;
    tt.key = t.key;
    for (const auto& [m, path] : t.inputs) {
      tt.files[m] = d.layout == TupleLayout::MajorTom ? find_thumbnail(path, m) : path;
    }
    s.tuples.push_back(std::move(tt));
  }
  if (s.tuples.empty()) {
    throw InputError("--test-set '" + root + "': no tuple has all four modalities (" + std::to_string(s.incomplete) +
                     " incomplete)");
  }
  return s;
}

GivenData read_test_input(const std::string& path, Modality m, Models& models) {
  const std::string what = modality_name(m) + " test input";
  if (ends_with_ci(path, ".npy")) {
    return read_given({GivenForm::Npy, path}, what, models.latent_channels(), models.latent_size());
  }
  GivenData in;
  const ImageU8 img = read_image_u8(path, what);
  const int s = models.image_size();
  if (img.bands != 3 || img.width < s || img.height < s) {
    throw InputError(what + " '" + path + "': expected an image of 3 Byte bands of at least " + std::to_string(s) +
                     " x " + std::to_string(s) + ", found " + std::to_string(img.width) + " x " +
                     std::to_string(img.height) + " with " + std::to_string(img.bands) + " band(s)");
  }
  torch::Tensor t = image_to_tensor(img);
  const int64_t y0 = (img.height - s) / 2, x0 = (img.width - s) / 2;  // the centre crop
  in.pixels = t.narrow(1, y0, s).narrow(2, x0, s).contiguous();
  return in;
}

}  // namespace copgen
