// STAC in and out: a STAC item where a file is taken (the assets a modality needs, as
// GDAL paths, so that only the windows needed are read over HTTP), an ItemCollection as a
// batch's list of tuples, and a STAC item that describes what a run wrote. No GDAL here:
// text is read through raster_io's read_text (GDAL's virtual file systems, so GDAL's HTTP
// settings, retries and credentials apply), grids and CRSs come from raster_scene.
//
//   if (copgen::is_stac_reference(path)) {
//     const copgen::StacItem item = copgen::read_stac_item(path, "S2L2A input");
//     auto files = copgen::stac_band_files(item, copgen::Modality::S2L2A, {}, "S2L2A input");
//     // files: /vsicurl/https://.../B04.tif, .../B03.tif, .../B02.tif
//   }
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "copgen/discovery.hpp"
#include "copgen/modality.hpp"

namespace copgen {

// Whether `path` names a STAC item rather than a raster: a name ending in .json (with an
// optional "#ITEM-ID" choosing one item of an ItemCollection), or an http(s):// URL
// (read through /vsicurl/).
bool is_stac_reference(const std::string& path);

// A STAC item as read.
struct StacItem {
  nlohmann::json json;    // the Feature
  std::string location;   // the file or /vsicurl/ URL it came from: relative hrefs resolve against it
  std::string reference;  // as given (with its #ITEM-ID)
  std::string id() const;
};

// Reads the item `reference` names: a Feature, or with "#ID" the feature of that id in an
// ItemCollection. Throws InputError naming `what` and the reference: unreadable (with
// GDAL's reason, e.g. an HTTP status after its retries), not JSON, not a STAC item, no
// item of that id.
StacItem read_stac_item(const std::string& reference, const std::string& what);

// The GDAL path of an asset href: http(s) -> /vsicurl/, s3:// -> /vsis3/, a relative href
// resolved against `location` (a folder path or a URL), anything else as it is.
std::string gdal_path_of_href(const std::string& href, const std::string& location);

// The band roles a modality reads, in band order: red, green, blue (S2); vv, vh (S1);
// elevation (DEM).
std::vector<std::string> band_roles(Modality m);

// The GDAL path of each band role's asset, in band order: the asset `overrides` names for
// the role (--asset ROLE=KEY), else the first asset whose key is a usual name of the role
// (red: red, B04, B4; vv: vv; elevation: elevation, data, dem ...), else the asset whose
// eo:bands common_name is the role. Throws InputError naming the item, the role and the
// asset keys it has when one is missing, and UsageError for an override naming no asset.
std::vector<std::string> stac_band_files(const StacItem& item, Modality m,
                                         const std::map<std::string, std::string>& overrides,
                                         const std::string& what);

// Parses --asset ROLE=KEY (role: red, green, blue, vv, vh, elevation); throws UsageError.
std::pair<std::string, std::string> parse_asset_override(const std::string& spec);

// The modality of an item of a search result: its "copgen:modality" property, else its
// collection ("sentinel-2-l1c" -> S2L1C, "sentinel-2-l2a" -> S2L2A, "sentinel-1-rtc" or
// "-grd" -> S1RTC, "cop-dem-glo-30" or any "dem" -> DEM); nullopt when neither says.
std::optional<Modality> modality_of_item(const nlohmann::json& item);

// A STAC ItemCollection (a saved search result or a URL) as a batch's tuples: the items
// of each --from modality, matched across modalities by their "grid:code" property where
// every item has one, else by footprint (the item of the largest bbox overlap); one tuple
// per item of the first --from modality, keyed by its id (outputs go to
// OUT/<id>/<MODALITY>.tif). Inputs are "<collection>#<item id>". Throws InputError for an
// unreadable collection or one that is not an ItemCollection.
Discovered read_item_collection(const std::string& reference, const std::vector<Modality>& from);

// A STAC item (1.0.0, projection and eo extensions) for the GeoTIFFs `outputs` of one
// run, to be written at `item_path`: geometry and bbox in WGS84 from the first output's
// grid, proj:epsg (or proj:wkt2 for a CRS without an EPSG code), proj:shape and
// proj:transform, one asset per output (keyed by its file name without the extension,
// href relative to the item, role "data", eo:bands from its band descriptions,
// copgen:modality), and copgen's provenance from the outputs' metadata (version, models
// hash, seed, solver, steps, given and generated modalities) with the sources (STAC item
// ids, or files). `datetime` is the source items' (the first that has one), else the time
// of writing.
nlohmann::json stac_item_of_outputs(const std::string& id, const std::vector<std::string>& outputs,
                                    const std::string& item_path, const std::vector<std::string>& sources);

// Writes stac_item_of_outputs atomically at `item_path` (OutputError naming --stac-out).
void write_stac_item(const std::string& item_path, const std::string& id, const std::vector<std::string>& outputs,
                     const std::vector<std::string>& sources);

}  // namespace copgen
