// Tests of the RAPL backend (src/device/rapl_backend.cpp) against fake powercap trees built in a
// fresh temporary directory per test.
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "chase/cpu.h"
#include "chase/error.h"
#include "support/errors.h"
#include "support/scoped_env.h"

namespace chase {
namespace {

using chase::testing::expect_error;
using chase::testing::ScopedEnv;
namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr std::uint64_t kRange = 262143328850;  // a typical max_energy_range_uj
constexpr std::uint64_t kStart = 1000000000;    // energy_uj at open, µJ

// Rewrites `file` in place (same inode), as the kernel does: the backend keeps energy_uj open.
void write_file(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("test setup: cannot write " + file.string());
}

void set_energy(const fs::path& zone_dir, std::uint64_t energy_uj) {
  write_file(zone_dir / "energy_uj", std::to_string(energy_uj) + "\n");
}

// A powercap zone directory with its three attribute files.
void make_zone(const fs::path& dir, const std::string& name, std::uint64_t energy_uj = kStart,
               std::uint64_t range_uj = kRange) {
  fs::create_directories(dir);
  write_file(dir / "name", name + "\n");
  set_energy(dir, energy_uj);
  write_file(dir / "max_energy_range_uj", std::to_string(range_uj) + "\n");
}

fs::path make_temp_dir() {
  std::string pattern = (fs::temp_directory_path() / "chase_rapl_test_XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("test setup: mkdtemp failed");
  // mkdtemp makes it 0700; the permission test needs others to traverse it.
  fs::permissions(pattern, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec);
  return pattern;
}

// "<package> <kind> <label>" per zone: compact and readable in failure output.
std::vector<std::string> describe(const std::vector<CpuZone>& zones) {
  std::vector<std::string> lines;
  for (const CpuZone& zone : zones) {
    lines.push_back(std::to_string(zone.package) + " " + zone.kind + " " + zone.label);
  }
  return lines;
}

class RaplTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = make_temp_dir();
    powercap_ = root_ / "class" / "powercap";
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }

  std::unique_ptr<CpuBackend> open() const { return open_rapl({root_}); }
  fs::path zone(const std::string& dir_name) const { return powercap_ / dir_name; }

  // Top-level zone intel-rapl:<index> named package-<package>, with a nested core sub-zone and,
  // if asked, a nested dram sub-zone.
  void add_package(unsigned index, std::size_t package, bool with_dram) {
    const std::string dir = "intel-rapl:" + std::to_string(index);
    make_zone(zone(dir), "package-" + std::to_string(package));
    make_zone(zone(dir) / (dir + ":0"), "core");
    if (with_dram) make_zone(zone(dir) / (dir + ":1"), "dram");
  }

  fs::path root_;
  fs::path powercap_;
};

TEST_F(RaplTest, ReportsPackageThenDramZonesOrderedByPackage) {
  // Directory order differs from package order; psys, core and the MMIO duplicate are skipped.
  add_package(0, 1, true);
  add_package(1, 0, true);
  make_zone(zone("intel-rapl:2"), "psys");
  make_zone(zone("intel-rapl-mmio:0"), "package-0");
  fs::create_directories(zone("intel-rapl"));  // the control type itself, as in real sysfs
  write_file(zone("intel-rapl") / "enabled", "1\n");

  const auto backend = open();

  EXPECT_EQ(backend->backend_name(), "rapl");
  EXPECT_EQ(describe(backend->zones()),
            (std::vector<std::string>{"0 package package-0", "0 dram package-0/dram",
                                      "1 package package-1", "1 dram package-1/dram"}));
}

TEST_F(RaplTest, EnergyIsJoulesSinceOpenForEachZonesOwnFile) {
  add_package(0, 0, true);
  add_package(1, 1, true);
  const auto backend = open();
  EXPECT_EQ(backend->energy_j(0), 0.0);

  set_energy(zone("intel-rapl:0"), kStart + 1500000);                  // +1.5 J
  set_energy(zone("intel-rapl:0/intel-rapl:0:1"), kStart + 250000);    // +0.25 J
  set_energy(zone("intel-rapl:1"), kStart + 30000000);                 // +30 J
  set_energy(zone("intel-rapl:1/intel-rapl:1:1"), kStart + 4000000);   // +4 J
  set_energy(zone("intel-rapl:1/intel-rapl:1:0"), kStart + 99000000);  // core: not reported

  EXPECT_NEAR(backend->energy_j(0), 1.5, 1e-9);
  EXPECT_NEAR(backend->energy_j(1), 0.25, 1e-9);
  EXPECT_NEAR(backend->energy_j(2), 30.0, 1e-9);
  EXPECT_NEAR(backend->energy_j(3), 4.0, 1e-9);

  set_energy(zone("intel-rapl:0"), kStart + 2000000);  // cumulative, not per call
  EXPECT_NEAR(backend->energy_j(0), 2.0, 1e-9);
}

TEST_F(RaplTest, PackageWithoutDramGivesOnlyThePackageZone) {
  add_package(0, 0, false);
  EXPECT_EQ(describe(open()->zones()), (std::vector<std::string>{"0 package package-0"}));
}

TEST_F(RaplTest, ReadingBelowTheLastOneAddsTheRange) {
  make_zone(zone("intel-rapl:0"), "package-0", kRange - 1000000);
  const auto backend = open();

  set_energy(zone("intel-rapl:0"), 2000000);  // wrapped: 1 J up to the range, then 2 J

  EXPECT_NEAR(backend->energy_j(0), 3.0, 1e-9);
}

TEST_F(RaplTest, TwoWrapsReadInBetweenAreBothUnrolled) {
  constexpr std::uint64_t kSmallRange = 1000000000;  // 1000 J
  make_zone(zone("intel-rapl:0"), "package-0", 900000000, kSmallRange);
  const auto backend = open();

  set_energy(zone("intel-rapl:0"), 100000000);  // first wrap: 100 J + 100 J
  EXPECT_NEAR(backend->energy_j(0), 200.0, 1e-9);
  set_energy(zone("intel-rapl:0"), 950000000);  // no wrap: + 850 J
  EXPECT_NEAR(backend->energy_j(0), 1050.0, 1e-9);
  set_energy(zone("intel-rapl:0"), 50000000);  // second wrap: 50 J + 50 J
  EXPECT_NEAR(backend->energy_j(0), 1150.0, 1e-9);
  EXPECT_NEAR(backend->energy_j(0), 1150.0, 1e-9);  // re-reading the same value adds nothing
}

TEST_F(RaplTest, SysfsLayoutWithNestedDirsAndTopLevelSymlinksCountsDramOnce) {
  // As on real machines: the tree lives under devices/, class/powercap holds symlinks to every
  // zone, sub-zones included.
  const fs::path real = root_ / "devices" / "virtual" / "powercap" / "intel-rapl" / "intel-rapl:0";
  make_zone(real, "package-0");
  make_zone(real / "intel-rapl:0:0", "core");
  make_zone(real / "intel-rapl:0:1", "dram");
  fs::create_directories(powercap_);
  fs::create_directory_symlink(real, zone("intel-rapl:0"));
  fs::create_directory_symlink(real / "intel-rapl:0:0", zone("intel-rapl:0:0"));
  fs::create_directory_symlink(real / "intel-rapl:0:1", zone("intel-rapl:0:1"));
  const auto backend = open();

  set_energy(real / "intel-rapl:0:1", kStart + 7000000);

  EXPECT_EQ(describe(backend->zones()),
            (std::vector<std::string>{"0 package package-0", "0 dram package-0/dram"}));
  EXPECT_NEAR(backend->energy_j(1), 7.0, 1e-9);
  EXPECT_EQ(backend->energy_j(0), 0.0);
}

TEST_F(RaplTest, DramSubZoneOnlyAtTopLevelIsFound) {
  make_zone(zone("intel-rapl:0"), "package-0");
  make_zone(zone("intel-rapl:0:0"), "core");
  make_zone(zone("intel-rapl:0:1"), "dram");
  make_zone(zone("intel-rapl:1:0"), "dram");  // another package's sub-zone: no package-1 here
  const auto backend = open();

  set_energy(zone("intel-rapl:0:1"), kStart + 500000);

  EXPECT_EQ(describe(backend->zones()),
            (std::vector<std::string>{"0 package package-0", "0 dram package-0/dram"}));
  EXPECT_NEAR(backend->energy_j(1), 0.5, 1e-9);
}

TEST_F(RaplTest, NoPowercapDirectoryGivesNoZones) {
  EXPECT_TRUE(open()->zones().empty());
  EXPECT_TRUE(open_rapl({root_ / "does-not-exist"})->zones().empty());
}

TEST_F(RaplTest, PowercapWithoutPackageZonesGivesNoZones) {
  make_zone(zone("intel-rapl:0"), "psys");
  EXPECT_TRUE(open()->zones().empty());
}

// The one note about `zones`, or a failure naming what came instead.
std::string only_note(const CpuBackend& backend) {
  const auto notes = backend.notes();
  if (notes.size() != 1) {
    ADD_FAILURE() << "expected exactly one note, got " << notes.size();
    return {};
  }
  return notes[0];
}

TEST_F(RaplTest, MalformedEnergyAtOpenSkipsTheZoneWithANoteNamingTheFileAndText) {
  add_package(0, 0, false);
  add_package(1, 1, false);
  const fs::path file = zone("intel-rapl:0") / "energy_uj";
  for (const std::string text :
       {"12abc\n", "-5\n", "", "1.5\n", " 7\n", "99999999999999999999\n"}) {
    SCOPED_TRACE("energy_uj = \"" + text + "\"");
    write_file(file, text);
    const std::string shown =
        text.empty() || text.back() != '\n' ? text : text.substr(0, text.size() - 1);
    const auto backend = open();
    EXPECT_EQ(describe(backend->zones()), (std::vector<std::string>{"1 package package-1"}));
    EXPECT_THAT(only_note(*backend), AllOf(HasSubstr(file.string()), HasSubstr("\"" + shown),
                                           HasSubstr("skipped package-0")));
  }
}

TEST_F(RaplTest, MalformedReadingAfterOpenThrowsAndKeepsTheTotal) {
  add_package(0, 0, false);
  const auto backend = open();
  set_energy(zone("intel-rapl:0"), kStart + 1000000);
  EXPECT_NEAR(backend->energy_j(0), 1.0, 1e-9);

  write_file(zone("intel-rapl:0") / "energy_uj", "garbage\n");
  expect_error([&] { backend->energy_j(0); }, ErrorCode::kParse,
               {(zone("intel-rapl:0") / "energy_uj").string(), "\"garbage\\n\""});

  set_energy(zone("intel-rapl:0"), kStart + 3000000);
  EXPECT_NEAR(backend->energy_j(0), 3.0, 1e-9);
}

TEST_F(RaplTest, ReadingAboveTheRangeSkipsTheZoneWithANote) {
  make_zone(zone("intel-rapl:0"), "package-0", 5000, 4000);
  const auto backend = open();
  EXPECT_TRUE(backend->zones().empty());
  EXPECT_THAT(only_note(*backend), AllOf(HasSubstr((zone("intel-rapl:0") / "energy_uj").string()),
                                         HasSubstr("max_energy_range_uj (4000)")));
}

TEST_F(RaplTest, ReadingAboveTheRangeAfterOpenIsAParseError) {
  make_zone(zone("intel-rapl:0"), "package-0", 3000, 4000);
  const auto backend = open();
  set_energy(zone("intel-rapl:0"), 5000);
  expect_error([&] { backend->energy_j(0); }, ErrorCode::kParse,
               {(zone("intel-rapl:0") / "energy_uj").string(), "max_energy_range_uj (4000)"});
}

TEST_F(RaplTest, ZeroRangeIsReadWithANoteAndAWrapCountsFromZero) {
  make_zone(zone("intel-rapl:0"), "package-0", 5000000, 0);
  const auto backend = open();
  ASSERT_EQ(describe(backend->zones()), (std::vector<std::string>{"0 package package-0"}));
  EXPECT_THAT(only_note(*backend), HasSubstr("max_energy_range_uj = 0"));
  set_energy(zone("intel-rapl:0"), 9000000);  // +4 J
  EXPECT_NEAR(backend->energy_j(0), 4.0, 1e-9);
  set_energy(zone("intel-rapl:0"), 1000000);  // wrapped at an unknown range: +1 J since 0
  EXPECT_NEAR(backend->energy_j(0), 5.0, 1e-9);
}

TEST_F(RaplTest, MissingEnergyFileSkipsTheZoneWithANoteNamingIt) {
  add_package(0, 0, false);
  add_package(1, 1, true);
  fs::remove(zone("intel-rapl:0") / "energy_uj");
  const auto backend = open();
  EXPECT_EQ(describe(backend->zones()),
            (std::vector<std::string>{"1 package package-1", "1 dram package-1/dram"}));
  EXPECT_THAT(only_note(*backend), AllOf(HasSubstr((zone("intel-rapl:0") / "energy_uj").string()),
                                         HasSubstr("No such file or directory")));
}

TEST_F(RaplTest, AnUnreadableEnergyFileSkipsTheZoneWithANote) {
  add_package(0, 0, true);
  add_package(1, 1, false);
  // A directory where the file should be: open() succeeds, every read fails (EISDIR), as a zone
  // whose firmware interface answers with an I/O error does.
  const fs::path dram = zone("intel-rapl:0") / "intel-rapl:0:1";
  fs::remove(dram / "energy_uj");
  fs::create_directory(dram / "energy_uj");
  const auto backend = open();
  EXPECT_EQ(describe(backend->zones()),
            (std::vector<std::string>{"0 package package-0", "1 package package-1"}));
  EXPECT_THAT(only_note(*backend),
              AllOf(HasSubstr("skipped package-0/dram"), HasSubstr("Is a directory")));
}

TEST_F(RaplTest, ZoneNumbersAreHexadecimal) {
  // The kernel names zones with %x: intel-rapl:a follows intel-rapl:9 on an 11-package machine.
  for (unsigned index = 0; index < 11; ++index) {
    char dir[32];
    std::snprintf(dir, sizeof dir, "intel-rapl:%x", index);
    make_zone(zone(dir), "package-" + std::to_string(index));
  }
  make_zone(zone("intel-rapl:a") / "intel-rapl:a:0", "dram");
  const auto backend = open();
  ASSERT_EQ(backend->zones().size(), 12u) << ::testing::PrintToString(describe(backend->zones()));
  EXPECT_EQ(backend->zones()[10].label, "package-10");
  EXPECT_EQ(backend->zones()[11].label, "package-10/dram");
  EXPECT_TRUE(backend->notes().empty());
  set_energy(zone("intel-rapl:a") / "intel-rapl:a:0", kStart + 2000000);
  EXPECT_NEAR(backend->energy_j(11), 2.0, 1e-9);
}

TEST_F(RaplTest, MultiDiePartsGiveOneZonePerDie) {
  make_zone(zone("intel-rapl:0"), "package-0-die-0");
  make_zone(zone("intel-rapl:0") / "intel-rapl:0:0", "dram");
  make_zone(zone("intel-rapl:1"), "package-0-die-1");
  make_zone(zone("intel-rapl:2"), "package-1-ccd-3");  // a per-CCD name, read the same way
  const auto backend = open();
  EXPECT_EQ(describe(backend->zones()),
            (std::vector<std::string>{"0 package package-0-die-0", "0 dram package-0-die-0/dram",
                                      "0 package package-0-die-1", "1 package package-1-ccd-3"}));
  EXPECT_EQ(backend->zones()[0].part, "die-0");
  EXPECT_EQ(backend->zones()[2].part, "die-1");
  EXPECT_EQ(backend->zones()[3].part, "ccd-3");
  set_energy(zone("intel-rapl:1"), kStart + 3000000);
  EXPECT_NEAR(backend->energy_j(2), 3.0, 1e-9);
}

TEST_F(RaplTest, TpmiZonesAreReadWhereTheMsrOnesAreMissing) {
  // Xeon 6: package 0 through both interfaces, package 1 through TPMI only.
  make_zone(zone("intel-rapl:0"), "package-0");
  make_zone(zone("intel-rapl-tpmi:0"), "package-0");
  make_zone(zone("intel-rapl-tpmi:1"), "package-1");
  make_zone(zone("intel-rapl-tpmi:1") / "intel-rapl-tpmi:1:0", "dram");
  const auto backend = open();
  EXPECT_EQ(describe(backend->zones()),
            (std::vector<std::string>{"0 package package-0", "1 package package-1",
                                      "1 dram package-1/dram"}));
  set_energy(zone("intel-rapl:0"), kStart + 1000000);
  set_energy(zone("intel-rapl-tpmi:0"), kStart + 9000000);  // the duplicate is not read
  EXPECT_NEAR(backend->energy_j(0), 1.0, 1e-9);
}

TEST_F(RaplTest, PsysAndMmioStayOutOfTheTotalsAndOtherZonesAreNoted) {
  make_zone(zone("intel-rapl:0"), "package-0");
  make_zone(zone("intel-rapl:1"), "psys");
  make_zone(zone("intel-rapl-mmio:0"), "package-0");
  make_zone(zone("intel-rapl:2"), "platform-x");
  const auto backend = open();
  EXPECT_EQ(describe(backend->zones()), (std::vector<std::string>{"0 package package-0"}));
  EXPECT_THAT(only_note(*backend), AllOf(HasSubstr("platform-x"), HasSubstr("not a CPU package")));
}

TEST_F(RaplTest, SysfsRootComesFromTheEnvironmentUnlessGivenInOptions) {
  add_package(0, 0, true);
  {
    const ScopedEnv env("CHASE_SYSFS_ROOT", root_.string());
    EXPECT_EQ(open_rapl()->zones().size(), 2u);
  }
  {
    const ScopedEnv env("CHASE_SYSFS_ROOT", (root_ / "does-not-exist").string());
    EXPECT_TRUE(open_rapl()->zones().empty());
    EXPECT_EQ(open_rapl({root_})->zones().size(), 2u);  // the option wins
  }
}

TEST_F(RaplTest, OutOfRangeZoneIsNotFound) {
  add_package(0, 0, true);
  const auto backend = open();
  expect_error([&] { backend->energy_j(2); }, ErrorCode::kNotFound, {"zone 2", "2 zone(s)"});
  expect_error([&] { open_rapl({root_ / "none"})->energy_j(0); }, ErrorCode::kNotFound,
               {"0 zone(s)"});
}

TEST_F(RaplTest, ConcurrentReadersSeeTheSameTotal) {
  add_package(0, 0, true);
  const auto backend = open();
  ASSERT_EQ(backend->zones().size(), 2u);
  set_energy(zone("intel-rapl:0"), kStart + 2000000);
  std::vector<std::thread> readers;
  std::vector<double> last_seen(4, -1.0);  // stays -1 if a reader threw
  for (std::size_t t = 0; t < last_seen.size(); ++t) {
    readers.emplace_back([&, t] {
      try {  // an exception escaping a thread would abort the whole test program
        for (int i = 0; i < 200; ++i) last_seen[t] = backend->energy_j(0) + backend->energy_j(1);
      } catch (const Error&) {
        last_seen[t] = -1.0;
      }
    });
  }
  for (std::thread& reader : readers) reader.join();
  for (const double seen : last_seen) EXPECT_NEAR(seen, 2.0, 1e-9);
}

// ---- Permission denied: the real kernel path -----------------------------------------------

// Exit codes of the death-test child, so that a failure says what went wrong.
constexpr int kExitNoError = 1;
constexpr int kExitWrongCode = 2;
constexpr int kExitPermissionDenied = 3;  // the expected outcome
constexpr int kExitFileNotNamed = 4;
constexpr int kExitCannotDropRoot = 5;
constexpr uid_t kNobody = 65534;

// Gives the tree to nobody so that, after dropping root, the child can still delete it.
void give_tree_to_nobody(const fs::path& root) {
  std::vector<fs::path> paths{root};
  for (const auto& entry : fs::recursive_directory_iterator(root)) paths.push_back(entry.path());
  for (const fs::path& path : paths) {
    if (::chown(path.c_str(), kNobody, kNobody) != 0) {
      throw std::runtime_error("test setup: cannot chown " + path.string());
    }
  }
}

void drop_root_privileges() {
  if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) {
    std::perror("cannot drop root privileges to uid/gid 65534");
    ::_exit(kExitCannotDropRoot);
  }
}

// The death-test child: builds a tree whose energy_uj is mode 000 (directories 0755), opens it
// without privileges, prints the error and exits with a code saying what happened. Everything
// happens here because the "threadsafe" style re-runs the test from the start in the child.
[[noreturn]] void open_unreadable_tree_unprivileged() {
  const fs::path root = make_temp_dir();
  const fs::path package = root / "class" / "powercap" / "intel-rapl:0";
  make_zone(package, "package-0");
  fs::permissions(package / "energy_uj", fs::perms::none);
  if (::geteuid() == 0) {
    give_tree_to_nobody(root);
    drop_root_privileges();  // root would read a mode-000 file
  }
  int exit_code = kExitNoError;
  try {
    open_rapl({root});
    std::fputs("open_rapl succeeded on an unreadable energy_uj\n", stderr);
  } catch (const Error& error) {
    std::fprintf(stderr, "%s\n", error.what());
    const std::string message = error.what();
    if (error.code() != ErrorCode::kPermissionDenied) {
      exit_code = kExitWrongCode;
    } else if (message.find((package / "energy_uj").string()) == std::string::npos) {
      exit_code = kExitFileNotNamed;
    } else {
      exit_code = kExitPermissionDenied;
    }
  }
  std::error_code ignored;
  fs::remove_all(root, ignored);
  ::_exit(exit_code);
}

TEST(RaplPermissionDeathTest, UnreadableEnergyFileSaysHowToGetAccess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(open_unreadable_tree_unprivileged(), ::testing::ExitedWithCode(kExitPermissionDenied),
              "cannot read .*/class/powercap/intel-rapl:0/energy_uj: Permission denied\\..*root.*"
              "udev rule.*not make .*energy_uj readable by everyone");
}

}  // namespace
}  // namespace chase
