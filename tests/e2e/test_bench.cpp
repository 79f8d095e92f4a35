// copgen bench through the real binary, the reference Python pipeline beside it, and
// --guidance-scale through translate. (The parity of the two pipelines' latents is a
// library test: unit/test_bench.cpp.)
#include "catch_torch.hpp"

#include <nlohmann/json.hpp>

#include "copgen/raster_io.hpp"
#include "support.hpp"

using namespace copgen::test;
using nlohmann::json;

namespace {

const std::string kTinyBench = "bench --devices cpu --repeat 1 --warmup 1 --steps 2 ";

std::string script() { return std::string(COPGEN_SOURCE_DIR) + "/scripts/research/reference_pipeline.py"; }

}  // namespace

TEST_CASE("cli bench: JSON figures with the --threads count honoured", "[cli][bench]") {
  TempDir tmp;
  for (int threads : {1, 2}) {
    const std::string out = tmp.file("bench" + std::to_string(threads) + ".json");
    const auto r = run_copgen(kTinyBench + "--batch-sizes 1,2 --threads " + std::to_string(threads) +
                              " --json " + quote(out));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::Contains("calls/s") && Catch::Contains("tuples/s"));
    const json j = json::parse(read_file_bytes(out));
    REQUIRE(j["rows"].size() == 2);
    for (const auto& row : j["rows"]) {
      CHECK(row["threads"] == threads);
      CHECK(row["device"] == "cpu");
      CHECK(row["precision"] == "fp32");
      CHECK(row["network"]["calls_per_s"].get<double>() > 0);
      CHECK(row["end_to_end"]["steps"] == 2);
      CHECK(row["end_to_end"]["tuples"] == row["batch_size"]);
      CHECK(row["end_to_end"]["tuples_per_s"].get<double>() > 0);
      CHECK(row["peak_host_rss_bytes"].get<std::int64_t>() > 0);
    }
    CHECK(j["rows"][0]["batch_size"] == 1);
    CHECK(j["rows"][1]["batch_size"] == 2);
  }
}

TEST_CASE("cli bench: copgen runs with OMP_WAIT_POLICY PASSIVE unless the user set it", "[cli][bench]") {
  TempDir tmp;
  const std::string args = kTinyBench + "--batch-sizes 1 --no-end-to-end --threads 1 --json ";
  const std::string unset = tmp.file("unset.json");
  auto r = run_command("env -u OMP_WAIT_POLICY -u COPGEN_DEFAULTED_ENV COPGEN_MODELS=" + quote(COPGEN_TEST_MODELS) +
                       " " + quote(COPGEN_BIN) + " " + args + quote(unset));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(json::parse(read_file_bytes(unset))["omp_wait_policy"] == "PASSIVE");
  const std::string user = tmp.file("user.json");
  r = run_command("env -u COPGEN_DEFAULTED_ENV OMP_WAIT_POLICY=ACTIVE COPGEN_MODELS=" + quote(COPGEN_TEST_MODELS) +
                  " " + quote(COPGEN_BIN) + " " + args + quote(user));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(json::parse(read_file_bytes(user))["omp_wait_policy"] == "ACTIVE");
}

TEST_CASE("cli bench: bad flags are usage errors naming the flag", "[cli][bench]") {
  auto check = [](const std::string& args, const std::string& flag) {
    const auto r = run_copgen(kTinyBench + args);
    INFO(args << "\n" << r.output);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::Contains(flag));
  };
  check("--batch-sizes 0", "--batch-sizes");
  check("--precisions fp8", "--precision");
  check("--cuda-graphs maybe", "--cuda-graphs");
  check("--precisions fp16", "--devices/--precisions");
  check("--compare-reference --reference-script /nonexistent/ref.py", "--reference-script");
}

TEST_CASE("cli bench: --compare-reference runs the Python pipeline on the same models", "[cli][bench][python]") {
  TempDir tmp;
  const std::string out = tmp.file("bench.json");
  const auto r = run_copgen(kTinyBench + "--batch-sizes 2 --threads 1 --compare-reference --python " +
                            quote(COPGEN_PYTHON) + " --reference-script " + quote(script()) + " --json " + quote(out));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("ref s/call") && Catch::Contains("x e2e"));
  // the reference gets the user's environment, not the wait policy copgen set for itself
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
    CHECK_THAT(r.output, Catch::Contains("env -u OMP_WAIT_POLICY -u COPGEN_DEFAULTED_ENV"));
  }
  const json j = json::parse(read_file_bytes(out));
  CHECK(j["python"] == COPGEN_PYTHON);
  REQUIRE(j["rows"].size() == 1);
  const json& row = j["rows"][0];
  CHECK(row["reference"]["seconds_per_call"].get<double>() > 0);
  CHECK(row["reference"]["tuples_per_s"].get<double>() > 0);
  CHECK(row["reference"]["cpu_seconds_per_call"].get<double>() > 0);
  CHECK(row["speedup"]["network_calls_cpu"].get<double>() ==
        Approx(row["reference"]["cpu_seconds_per_call"].get<double>() /
               row["network"]["cpu_seconds_per_call"].get<double>()));
  const double ratio = row["speedup"]["network_calls"].get<double>();
  CHECK(ratio == Approx(row["reference"]["seconds_per_call"].get<double>() /
                        row["network"]["seconds_per_call"].get<double>()));
  CHECK(row["speedup"]["end_to_end"].get<double>() ==
        Approx(row["end_to_end"]["tuples_per_s"].get<double>() / row["reference"]["tuples_per_s"].get<double>()));
  // memory side by side: peak host RSS of both (positive), peak device memory of both (null on the CPU)
  CHECK_THAT(r.output, Catch::Contains("peak RSS") && Catch::Contains("ref peak RSS") &&
                           Catch::Contains("ref peak dev"));
  CHECK(row["peak_host_rss_bytes"].get<std::int64_t>() > 0);
  CHECK(row["reference"]["peak_host_rss_bytes"].get<std::int64_t>() > 0);
  CHECK(row["peak_device_bytes"].is_null());
  CHECK(row["reference"]["peak_device_bytes"].is_null());
  CHECK(row["reference"]["peak_device_allocated_bytes"].is_null());
}

TEST_CASE("cli translate: --guidance-scale 0 writes the bytes of no guidance - 0.5 differs with twice the calls",
          "[cli][guidance]") {
  TempDir tmp;
  const std::string in = tmp.file("l1c.tif");
  write_synthetic(in, {});
  auto run = [&](const std::string& name, const std::string& extra) {
    const auto r = run_copgen("translate --from S2L1C --to S2L2A -i " + quote(in) + " -o " + quote(tmp.file(name)) +
                              " --steps 3 --seed 11 " + extra);
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    return r.output;
  };
  const std::string plain = run("plain.tif", "");
  const std::string zero = run("zero.tif", "--guidance-scale 0");
  const std::string half = run("half.tif", "--guidance-scale 0.5");
  const std::string unguided = "1 sample(s), 3 solver step(s), 3 backbone pass(es), 3 window evaluation(s)";
  CHECK_THAT(plain, Catch::Contains(unguided));
  CHECK_THAT(zero, Catch::Contains(unguided));
  CHECK_THAT(half, Catch::Contains("1 sample(s), 3 solver step(s), 6 backbone pass(es), 6 window evaluation(s)"));
  const std::string a = read_file_bytes(tmp.file("plain.tif"));
  REQUIRE(!a.empty());
  CHECK(a == read_file_bytes(tmp.file("zero.tif")));
  // the guided file differs in its metadata anyway: compare its pixels
  const auto pa = copgen::read_image_u8(tmp.file("plain.tif"), "plain").pixels;
  const auto ph = copgen::read_image_u8(tmp.file("half.tif"), "guided").pixels;
  REQUIRE(pa.size() == ph.size());
  CHECK(pa != ph);
}
