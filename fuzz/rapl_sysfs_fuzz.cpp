// open_rapl (chase/cpu.h) over a fake sysfs powercap tree whose files hold the input. The input is
// split at '|' into the files' texts, in this order: for package zones intel-rapl:0 and
// intel-rapl:1, name, energy_uj, max_energy_range_uj; then a nested intel-rapl:0:0 and a top-level
// intel-rapl:1:0 sub-zone likewise; then second readings of the four energy_uj files. A field
// left out leaves its file out. Whatever the files say, open_rapl and energy_j either throw
// chase::Error or give finite, non-negative, monotonic energies.
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "chase/cpu.h"
#include "fuzz_support.h"

using namespace chase;
namespace fs = std::filesystem;

namespace {

std::vector<std::string_view> split(std::string_view text) {
  std::vector<std::string_view> fields;
  while (true) {
    const auto bar = text.find('|');
    fields.push_back(text.substr(0, bar));
    if (bar == std::string_view::npos) return fields;
    text.remove_prefix(bar + 1);
  }
}

void write(const fs::path& file, const std::vector<std::string_view>& fields, std::size_t index) {
  if (index >= fields.size()) return;
  fs::create_directories(file.parent_path());
  fuzz::write_file(fs::relative(file, fuzz::scratch_dir()).string(), fields[index]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto fields = split(fuzz::as_text(data, size));
  const fs::path root = fuzz::scratch_dir() / "sys";
  fs::remove_all(root);
  const fs::path powercap = root / "class" / "powercap";
  const std::vector<fs::path> zone_dirs = {powercap / "intel-rapl:0", powercap / "intel-rapl:1",
                                           powercap / "intel-rapl:0" / "intel-rapl:0:0",
                                           powercap / "intel-rapl:1:0"};
  fs::create_directories(powercap);
  for (std::size_t zone = 0; zone < zone_dirs.size(); ++zone) {
    write(zone_dirs[zone] / "name", fields, 3 * zone);
    write(zone_dirs[zone] / "energy_uj", fields, 3 * zone + 1);
    write(zone_dirs[zone] / "max_energy_range_uj", fields, 3 * zone + 2);
  }
  fuzz::expect_only_chase_errors([&] {
    const auto backend = open_rapl(RaplOptions{root});
    std::vector<double> first;
    for (std::size_t zone = 0; zone < backend->zones().size(); ++zone) {
      first.push_back(backend->energy_j(zone));
      fuzz::require(std::isfinite(first.back()) && first.back() >= 0);
    }
    for (std::size_t zone = 0; zone < zone_dirs.size(); ++zone) {
      if (3 * zone_dirs.size() + zone < fields.size() &&
          fs::exists(zone_dirs[zone] / "energy_uj")) {
        write(zone_dirs[zone] / "energy_uj", fields, 3 * zone_dirs.size() + zone);
      }
    }
    for (std::size_t zone = 0; zone < backend->zones().size(); ++zone) {
      const double later = backend->energy_j(zone);
      fuzz::require(std::isfinite(later) && later >= first[zone]);
    }
  });
  return 0;
}
