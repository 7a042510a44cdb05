// One report for a launched job's ranks (see job_report.h).
#include "cli/job_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <ostream>
#include <set>
#include <thread>

#include "chase/error.h"
#include "common/json_fields.h"
#include "common/text.h"

namespace chase::cli {
namespace {

namespace fs = std::filesystem;

std::string file_safe(std::string text) {
  for (auto& c : text) {
    const bool safe =
        std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    if (!safe) c = '_';
  }
  return text.empty() ? "unnamed" : text;
}

fs::path part_path(const fs::path& directory, std::size_t rank) {
  return directory / fmt::format("rank-{}.json", rank);
}

// A rank's emissions per joule: all its devices were measured over the same window, so its
// carbon_g / total_energy_j is the intensity each of its devices' energy is weighed with.
double grams_per_joule(const nlohmann::json& part) {
  const double energy = part.value("total_energy_j", 0.0);
  if (!part.contains("carbon_g") || !(energy > 0)) return 0;
  return part["carbon_g"].get<double>() / energy;
}

struct Totals {
  double gpu_j = 0, cpu_j = 0, carbon_g = 0;
  bool has_carbon = false;
  nlohmann::json json() const {
    nlohmann::json j = {
        {"gpu_energy_j", gpu_j}, {"cpu_energy_j", cpu_j}, {"total_energy_j", gpu_j + cpu_j}};
    if (has_carbon) j["carbon_g"] = carbon_g;
    return j;
  }
};

// Ranks started with a different command or carbon source than the first part's: their numbers are
// still merged (they were measured), and the warning names both ranks' values.
void check_same_options(const std::vector<nlohmann::json>& parts, nlohmann::json& warnings) {
  if (parts.empty()) return;
  const auto& first = parts.front();
  for (const auto& part : parts) {
    for (const char* key : {"command", "intensity_g_per_kwh", "carbon_source"}) {
      const auto mine = part.value(key, nlohmann::json());
      const auto theirs = first.value(key, nlohmann::json());
      if (mine == theirs) continue;
      warnings.push_back(
          fmt::format("the ranks disagree about {}: rank {} has {} but rank {} has {}", key,
                      first["rank"].get<std::size_t>(), escape_untrusted(theirs.dump(), 200),
                      part["rank"].get<std::size_t>(), escape_untrusted(mine.dump(), 200)));
    }
  }
}

// Merges the parts: each (node, GPU) and (node, CPU zone) once, the first rank to report it.
nlohmann::json merge(const std::vector<nlohmann::json>& parts, nlohmann::json& warnings) {
  std::map<std::string, nlohmann::json> nodes;
  std::map<std::string, Totals> node_totals;
  std::map<std::string, std::size_t> measured_by;  // "node/gpu/uuid" → rank
  Totals total;
  nlohmann::json ranks = nlohmann::json::array();
  for (const auto& part : parts) {
    const auto rank = part["rank"].get<std::size_t>();
    const auto node_name = part["node"].get<std::string>();
    auto& node = nodes[node_name];
    auto& sums = node_totals[node_name];
    node["node"] = node_name;
    node["ranks"].push_back(rank);
    if (!node.contains("gpus")) node["gpus"] = nlohmann::json::array();
    if (!node.contains("cpus")) node["cpus"] = nlohmann::json::array();
    const double g_per_j = grams_per_joule(part);
    const bool has_carbon = part.contains("carbon_g");
    nlohmann::json measured = {{"gpus", nlohmann::json::array()},
                               {"cpu_zones", nlohmann::json::array()}};
    auto count = [&](const nlohmann::json& device, const std::string& key, const char* list,
                     double& node_sum, double& total_sum) {
      const auto [it, added] = measured_by.emplace(node_name + "/" + key, rank);
      if (!added) {
        warnings.push_back(
            fmt::format("{} on node {} was measured by ranks {} and {}; counted once "
                        "(rank {}'s)",
                        key, node_name, it->second, rank, it->second));
        return;
      }
      auto entry = device;
      entry["measured_by_rank"] = rank;
      const double energy = device.value("energy_j", 0.0);
      if (has_carbon) entry["carbon_g"] = energy * g_per_j;
      node[list].push_back(entry);
      measured[list == std::string("gpus") ? "gpus" : "cpu_zones"].push_back(key);
      node_sum += energy;
      total_sum += energy;
      if (has_carbon) {
        sums.carbon_g += energy * g_per_j;
        total.carbon_g += energy * g_per_j;
        sums.has_carbon = total.has_carbon = true;
      }
    };
    for (const auto& gpu : part.value("gpus", nlohmann::json::array())) {
      const auto id = gpu.value("uuid", std::string());
      count(gpu, "GPU " + (id.empty() ? std::to_string(gpu.value("index", 0)) : id), "gpus",
            sums.gpu_j, total.gpu_j);
    }
    for (const auto& cpu : part.value("cpus", nlohmann::json::array())) {
      count(cpu,
            fmt::format("CPU package-{} {}{}", cpu.value("package", 0), cpu.value("zone", ""),
                        cpu.contains("part") ? "/" + cpu["part"].get<std::string>() : ""),
            "cpus", sums.cpu_j, total.cpu_j);
    }
    nlohmann::json summary = {{"rank", rank},
                              {"node", node_name},
                              {"local_rank", part["local_rank"]},
                              {"exit_code", part.value("exit_code", 0)},
                              {"time_s", part.value("time_s", 0.0)},
                              {"measured", measured}};
    for (const auto& w : part.value("warnings", nlohmann::json::array())) {
      warnings.push_back(fmt::format("rank {}: {}", rank, w.get<std::string>()));
    }
    ranks.push_back(summary);
  }
  nlohmann::json node_list = nlohmann::json::array();
  for (auto& [name, node] : nodes) {
    node.update(node_totals[name].json());
    node_list.push_back(node);
  }
  return {{"ranks", ranks}, {"nodes", node_list}, {"total", total.json()}};
}

}  // namespace

fs::path job_part_directory(const fs::path& base, const LaunchInfo& launch) {
  return base / (".chase-job-" + file_safe(launch.job_id));
}

void write_job_part(const fs::path& directory, const LaunchInfo& launch,
                    nlohmann::json measurement) {
  std::error_code error;
  fs::create_directories(directory, error);
  if (error) {
    throw Error(ErrorCode::kIo, fmt::format("cannot create the job directory '{}': {}; give a "
                                            "directory every rank can write with --job-dir",
                                            directory.string(), error.message()));
  }
  measurement["rank"] = launch.rank;
  measurement["node"] = launch.node;
  measurement["local_rank"] = launch.local_rank;
  // Written aside, then renamed: the leader never reads half a part.
  write_json_file_atomically(part_path(directory, launch.rank), measurement, "this rank's part",
                             -1);
}

// Launch skew between ranks is seconds at most; an earlier run's part ended long before.
constexpr auto kStalePart = std::chrono::minutes(1);

nlohmann::json collect_job_report(const fs::path& directory, const LaunchInfo& launch,
                                  std::chrono::milliseconds timeout, UtcTime leader_start) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::set<std::size_t> waiting;
  for (std::size_t r = 0; r < launch.size; ++r) waiting.insert(r);
  std::vector<nlohmann::json> parts;
  nlohmann::json warnings = nlohmann::json::array();
  while (!waiting.empty()) {
    for (auto it = waiting.begin(); it != waiting.end();) {
      const auto path = part_path(directory, *it);
      std::ifstream in(path);
      if (!in) {
        ++it;
        continue;
      }
      try {
        auto part = nlohmann::json::parse(in);
        const auto ended = parse_utc_time(part.value("end_time", std::string()));
        if (!ended || *ended < leader_start - kStalePart) {  // an earlier run's: wait on
          ++it;
          continue;
        }
        parts.push_back(std::move(part));
      } catch (const nlohmann::json::exception& e) {
        warnings.push_back(fmt::format("rank {}'s part '{}' is malformed ({}); left out", *it,
                                       path.string(), e.what()));
      }
      it = waiting.erase(it);
    }
    if (waiting.empty() || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::sort(parts.begin(), parts.end(),
            [](const auto& a, const auto& b) { return a["rank"] < b["rank"]; });
  check_same_options(parts, warnings);
  auto report = merge(parts, warnings);
  nlohmann::json missing = nlohmann::json::array();
  for (auto r : waiting) missing.push_back(r);
  if (!missing.empty()) {
    warnings.push_back(fmt::format(
        "{} of {} ranks sent no measurement within {} ms (ranks {}); the totals are a lower bound",
        missing.size(), launch.size, timeout.count(), missing.dump()));
  }
  report["job"] = {{"launcher", launch.launcher},
                   {"job_id", launch.job_id},
                   {"ranks", launch.size},
                   {"missing_ranks", missing},
                   {"complete", missing.empty()}};
  if (!parts.empty()) report["command"] = parts.front().value("command", nlohmann::json::array());
  report["warnings"] = warnings;
  if (missing.empty()) {  // a partial job keeps its parts, so nothing measured is lost
    std::error_code ignored;
    fs::remove_all(directory, ignored);
  }
  return report;
}

void print_job_report(std::ostream& out, const nlohmann::json& report) {
  const auto& job = report["job"];
  out << fmt::format("chase: job of {} ranks ({}), {} node(s)\n", job["ranks"].get<std::size_t>(),
                     job["launcher"].get<std::string>(), report["nodes"].size());
  const auto line = [&](const std::string& name, const nlohmann::json& sums) {
    out << fmt::format("  {:<20} GPU {:12.1f} J  CPU {:12.1f} J  total {:12.1f} J", name,
                       sums["gpu_energy_j"].get<double>(), sums["cpu_energy_j"].get<double>(),
                       sums["total_energy_j"].get<double>());
    if (sums.contains("carbon_g"))
      out << fmt::format("  {:.3f} gCO2eq", sums["carbon_g"].get<double>());
    out << '\n';
  };
  for (const auto& node : report["nodes"])
    line(escape_untrusted(node["node"].get<std::string>(), 20), node);
  line("total", report["total"]);
  for (const auto& w : report["warnings"])
    out << "chase: warning: " << escape_untrusted(w.get<std::string>()) << '\n';
}

}  // namespace chase::cli
