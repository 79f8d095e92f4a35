// STAC in and out: a STAC item where a file is taken (the assets a modality needs, as
// GDAL paths, so that only the windows needed are read over HTTP), an ItemCollection as a
// batch's list of tuples, and a STAC item that describes what a run wrote. No GDAL here:
// documents are read through raster_io's read_text (over HTTP copgen's bounded,
// interruptible reader, remote.hpp; local files and s3:// through GDAL), grids and CRSs
// come from raster_scene.
//
//   if (copgen::is_stac_reference(path)) {
//     const copgen::StacItem item = copgen::read_stac_item(path, "S2L2A input");
//     auto bands = copgen::stac_band_files(item, copgen::Modality::S2L2A, {}, "S2L2A input");
//     // bands: {/vsicurl/https://.../B04.tif, 1}, {.../B03.tif, 1}, {.../B02.tif, 1}
//   }
#pragma once

#include <map>
#include <optional>
#include <string>
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

// The GDAL path of an asset href of an item read from `location` (a file path, or a
// /vsicurl/ URL). http(s) -> /vsicurl/, s3:// -> /vsis3/, gs:// -> /vsigs/, az:// -> /vsiaz/.
// An item read over the network names only network locations: its relative and
// server-absolute hrefs resolve against its URL, and a file:// href is refused. A local
// item's relative hrefs resolve against its folder, file:// names a local file, and local
// paths are percent-decoded ("B04%20a.tif" -> "B04 a.tif"). No item may name GDAL's special
// files (/vsistdin/, /vsimem/, /vsizip/, vrt://, ...) or another scheme. Throws InputError
// "href '<href>': <why>".
std::string gdal_path_of_href(const std::string& href, const std::string& location);

// One band of a role: the GDAL path of its asset and the band in it (1-based).
struct StacBand {
  std::string path;
  int band = 1;
  std::string asset;  // the asset's key
};

// Each band role's band, in band order. The asset: the one `overrides` names for the role
// (--asset ROLE=KEY), else the first asset whose key is a usual name of the role (red: red,
// B04, B4; vv: vv; elevation: elevation, data, dem ...) unless its eo:bands name another
// band and an asset of the role exists, else the single-band asset whose eo:bands (STAC
// 1.1: bands) common_name is the role, else a multi-band asset that lists it (never a
// visual one: a true-colour image). The band within a multi-band asset is the role's place
// in its eo:bands. A disagreement between a key and its eo:bands, or several assets of one
// role, is logged with the choice made. Throws InputError naming the item, the role and
// (at most 8 of) its asset keys when one is missing, or when a named multi-band asset
// lists no such band; UsageError for an override naming no asset.
std::vector<StacBand> stac_band_files(const StacItem& item, Modality m,
                                      const std::map<std::string, std::string>& overrides, const std::string& what);

// What a Sentinel-2 input says of the +1000 its digital numbers carry from processing
// baseline 04.00 on (shared/reference/catalogs.md): the DNs to subtract before rendering,
// and where that was read ("s2:processing_baseline 05.10 >= 04.00").
struct S2OffsetEvidence {
  double dn = 0.0;     // digital numbers to subtract: 1000, or 0
  std::string source;  // the words it was read from, for the log and the metadata
};

// The offset a processing baseline implies: 1000 from "04.00" on, else 0 ("05.10", "5.1",
// "04.00"); nullopt for a text that is no baseline.
std::optional<double> s2_offset_of_baseline(const std::string& baseline);

// The offset a STAC item says the assets `keys` carry, in each catalog's words, the first
// that says: Earth Search's "earthsearch:boa_offset_applied" (true: Earth Search removed
// it, 0; false: the baseline below decides); "raster:offset" and "raster:scale" of the
// assets (on the asset, the Copernicus Data Space's way, or in "raster:bands" or STAC 1.1
// "bands": reflectance = DN * scale + offset, so -offset / scale DNs: -0.1 and 0.0001 ->
// 1000); the baseline, "s2:processing_baseline" (Planetary Computer, Earth Search), then
// "processing:version" (Data Space). nullopt when the item says none of these.
std::optional<S2OffsetEvidence> stac_s2_offset(const StacItem& item, const std::vector<std::string>& keys);

// Parses and adds one --asset to `overrides`; UsageError for a role given twice.
void add_asset_override(std::map<std::string, std::string>& overrides, const std::string& spec);
// UsageError for an override whose role no `given` modality reads (--asset vv=KEY with S2 only).
void check_asset_overrides(const std::map<std::string, std::string>& overrides, const std::vector<Modality>& given);

// A STAC ItemCollection (a saved search result or a URL) as a batch's tuples: the items
// of each --from modality, matched across modalities by their "grid:code" property where
// every item has one, else by footprint (the item of the largest bbox overlap); one tuple
// per item of the first --from modality, keyed by its id (outputs go to
// OUT/<id>/<MODALITY>.tif). Inputs are "<collection>#<item id>". Throws InputError for an
// unreadable collection or one that is not an ItemCollection.
Discovered read_item_collection(const std::string& reference, const std::vector<Modality>& from);

// Writes, atomically at `item_path`, a STAC item (1.0.0, projection and eo extensions) of
// the GeoTIFFs `outputs` of one run: geometry and bbox in WGS84 from the first output's
// grid, proj:epsg (or proj:wkt2 for a CRS without an EPSG code), proj:shape and
// proj:transform, one asset per output (keyed by its file name without the extension,
// href relative to the item, role "data", eo:bands from its band descriptions,
// copgen:modality), and copgen's provenance from the outputs' metadata (version, models
// hash, seed, solver, steps, given and generated modalities; provenance.hpp) with the
// sources: STAC item ids, each item linked as derived_from (a URL as it is, a file
// relative to the item), or file paths.
// `datetime` is the source items' (the first that has one), else the time of writing.
// Throws OutputError naming --stac-out.
void write_stac_item(const std::string& item_path, const std::string& id, const std::vector<std::string>& outputs,
                     const std::vector<std::string>& sources);

}  // namespace copgen
