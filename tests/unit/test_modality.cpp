#include "catch_torch.hpp"

#include "copgen/error.hpp"
#include "copgen/modality.hpp"

using namespace copgen;

TEST_CASE("modality: canonical and reference names - case-insensitive", "[modality]") {
  CHECK(parse_modality("DEM") == Modality::DEM);
  CHECK(parse_modality("dem") == Modality::DEM);
  CHECK(parse_modality("s1rtc") == Modality::S1RTC);
  CHECK(parse_modality("S1_RTC") == Modality::S1RTC);
  CHECK(parse_modality("s2_l1c") == Modality::S2L1C);
  CHECK(parse_modality(" S2l2a ") == Modality::S2L2A);
  CHECK(modality_index(Modality::S2L1C) == 2);
  CHECK(modality_name(Modality::S1RTC) == "S1RTC");
  CHECK(modality_reference_name(Modality::S2L2A) == "s2_l2a");
}

TEST_CASE("modality: unknown names are usage errors naming the flag and the name", "[modality]") {
  CHECK_THROWS_AS(parse_modality("S3", "--to"), UsageError);
  CHECK_THROWS_WITH(parse_modality("S3", "--to"),
                    Catch::Contains("--to") && Catch::Contains("'S3'") && Catch::Contains("S2L2A"));
}

TEST_CASE("modality: lists are comma-separated or repeated - without repeats", "[modality]") {
  CHECK(parse_modality_list({"DEM,s1_rtc"}, "--from") ==
        std::vector<Modality>{Modality::DEM, Modality::S1RTC});
  CHECK(parse_modality_list({"S2L2A", "DEM"}, "--to") ==
        std::vector<Modality>{Modality::S2L2A, Modality::DEM});
  CHECK(parse_modality_list({}, "--to").empty());
  CHECK_THROWS_WITH(parse_modality_list({"DEM,dem"}, "--from"),
                    Catch::Contains("--from") && Catch::Contains("more than once"));
  CHECK_THROWS_AS(parse_modality_list({"DEM,"}, "--from"), UsageError);
  CHECK(join_modalities(sorted_modalities({Modality::S2L2A, Modality::DEM})) == "DEM,S2L2A");
}
