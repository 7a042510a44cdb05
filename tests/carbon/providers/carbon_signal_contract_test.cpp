// CarbonSignal clauses the first suite does not reach: a partial outage (the latest value fails
// while the forecast does or does not cover now; an empty forecast), "reads never wait for a
// provider" (a provider held on a latch while readers read), and reads racing refreshes that each
// bring different data, checked for torn or out-of-order snapshots. Built into the ThreadSanitizer
// pass too (make test-tsan), so it includes nothing beyond chase_carbon.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "chase/carbon_signal.h"
#include "chase/error.h"
#include "support/errors.h"

namespace chase::testing {
namespace {

using std::chrono::minutes;
using ::testing::HasSubstr;

UtcTime at(const char* text) {
  const auto time = parse_utc_time(text);
  EXPECT_TRUE(time) << text;
  return time.value_or(UtcTime{});
}

UtcTime now_fixture() { return at("2026-03-01T12:20:00Z"); }
constexpr std::size_t kPoints = 6;  // half hours from 12:00

// A forecast of generation `g`: half hours from 12:00 worth 10 g + i, its source naming g, so a
// reader can tell from any snapshot which refresh it came from and whether it is whole.
CarbonSeries generation_series(int g) {
  std::vector<UtcTime> times;
  std::vector<double> values;
  for (std::size_t i = 0; i < kPoints; ++i) {
    times.push_back(at("2026-03-01T12:00:00Z") + minutes(30) * static_cast<int>(i));
    values.push_back(10.0 * g + static_cast<double>(i));
  }
  return CarbonSeries(std::move(times), std::move(values), minutes(30), std::to_string(g));
}

// A provider whose every forecast is a new generation; latest() and forecast() fail or block on
// the test's say.
class GenerationProvider final : public CarbonProvider {
 public:
  std::string_view name() const noexcept override { return "generations"; }
  CarbonPoint latest() override {
    std::lock_guard lock(mutex_);
    if (latest_fails) throw Error(ErrorCode::kUnavailable, "generations: latest answered HTTP 502");
    return CarbonPoint{at("2026-03-01T12:00:00Z"), latest_value, minutes(30), false};
  }
  CarbonSeries history(UtcTime, UtcTime) override {
    throw Error(ErrorCode::kUnavailable, "generations: no history");
  }
  CarbonSeries forecast(std::chrono::seconds) override {
    std::optional<std::promise<void>> entered;
    std::shared_future<void> release;
    {
      std::lock_guard lock(mutex_);
      if (block_next) {
        entered = std::move(block_next->entered);
        release = block_next->release;
        block_next.reset();
      }
    }
    if (entered) {
      entered->set_value();
      release.wait();
    }
    std::lock_guard lock(mutex_);
    if (forecast_override) return *forecast_override;
    return generation_series(++generation);
  }

  // The next forecast() announces itself on `entered` and waits for `release`.
  struct Block {
    std::promise<void> entered;
    std::shared_future<void> release;
  };
  void block_next_forecast(Block block) {
    std::lock_guard lock(mutex_);
    block_next = std::move(block);
  }
  void set_latest_fails(bool fails) {
    std::lock_guard lock(mutex_);
    latest_fails = fails;
  }
  void set_forecast(std::optional<CarbonSeries> series) {
    std::lock_guard lock(mutex_);
    forecast_override = std::move(series);
  }

 private:
  std::mutex mutex_;
  int generation = 0;
  bool latest_fails = false;
  double latest_value = 555;
  std::optional<CarbonSeries> forecast_override;
  std::optional<Block> block_next;
};

class CarbonSignalContract : public ::testing::Test {
 protected:
  CarbonSignalOptions options() const {
    CarbonSignalOptions o;
    o.clock = clock_;
    o.horizon = std::chrono::hours(3);
    return o;
  }
  std::shared_ptr<GenerationProvider> provider_ = std::make_shared<GenerationProvider>();
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(now_fixture());
};

// --- partial outages ---------------------------------------------------------------------------

TEST_F(CarbonSignalContract, LatestFailingIsNoOutageWhenTheForecastCoversNow) {
  provider_->set_latest_fails(true);
  CarbonSignal signal(provider_, options());
  EXPECT_TRUE(signal.refresh());
  EXPECT_FALSE(signal.status().stale);
  EXPECT_DOUBLE_EQ(signal.intensity_now(), 10);  // generation 1, the 12:00 half hour
  EXPECT_EQ(signal.forecast(3).size(), 3U);
}

TEST_F(CarbonSignalContract, LatestFailingAndAForecastNotCoveringNowIsAnOutage) {
  CarbonSignal signal(provider_, options());
  ASSERT_TRUE(signal.refresh());  // generation 1, latest 555
  provider_->set_latest_fails(true);
  provider_->set_forecast(CarbonSeries({at("2026-03-01T14:00:00Z")}, {42}, minutes(30)));
  EXPECT_FALSE(signal.refresh());
  const auto status = signal.status();
  EXPECT_TRUE(status.stale);
  EXPECT_THAT(status.stale_reason, HasSubstr("HTTP 502"));
  // The last good data is what is served: generation 1's forecast, not the new one.
  EXPECT_DOUBLE_EQ(signal.intensity_now(), 10);
  EXPECT_EQ(signal.forecast_series().source(), "1");
}

TEST_F(CarbonSignalContract, AnEmptyForecastWithALatestValueServesTheLatest) {
  provider_->set_forecast(CarbonSeries());
  CarbonSignal signal(provider_, options());
  EXPECT_TRUE(signal.refresh());
  EXPECT_DOUBLE_EQ(signal.intensity_now(), 555);
  EXPECT_TRUE(signal.forecast(4).empty());
}

TEST_F(CarbonSignalContract, AnEmptyForecastWithoutALatestValueIsAnOutageNamingTheCause) {
  provider_->set_forecast(CarbonSeries());
  provider_->set_latest_fails(true);
  CarbonSignal signal(provider_, options());
  EXPECT_FALSE(signal.refresh());
  EXPECT_FALSE(signal.status().has_data);
  const auto message = error_message([&] { signal.intensity_now(); }, ErrorCode::kUnavailable);
  EXPECT_THAT(message, HasSubstr("No carbon-intensity data yet"));
  EXPECT_THAT(message, HasSubstr("HTTP 502"));
}

// --- reads never wait for a provider -----------------------------------------------------------

TEST_F(CarbonSignalContract, ReadsDoNotWaitForAProviderThatIsStuck) {
  CarbonSignal signal(provider_, options());
  ASSERT_TRUE(signal.refresh());  // generation 1
  std::promise<void> release;
  GenerationProvider::Block block{std::promise<void>{}, release.get_future().share()};
  auto entered = block.entered.get_future();
  provider_->block_next_forecast(std::move(block));
  std::thread refresher([&] { signal.refresh(); });
  entered.wait();  // the refresh is now inside the provider, and stays there until released

  auto reads = std::async(std::launch::async, [&] {
    const double now = signal.intensity_now();
    const auto periods = signal.forecast(3);
    const auto source = signal.forecast_series().source();
    const auto status = signal.status();
    return std::make_tuple(now, periods.size(), source, status.has_data);
  });
  // Only a failing implementation gets near this bound; a correct one answers at once.
  const bool answered = reads.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  EXPECT_TRUE(answered) << "reads waited for the provider";
  release.set_value();
  refresher.join();
  const auto [now, periods, source, has_data] = reads.get();
  EXPECT_DOUBLE_EQ(now, 10);
  EXPECT_EQ(periods, 3U);
  EXPECT_EQ(source, "1");
  EXPECT_TRUE(has_data);
  EXPECT_EQ(signal.forecast_series().source(), "2") << "the released refresh lands";
}

// --- reads racing refreshes ----------------------------------------------------------------------

// What a reader checks of one snapshot: whole (one generation throughout), and never older than
// one it saw before. Returns the generation, or -1 after a failed check.
int check_snapshot(const CarbonSignal& signal, int previous) {
  const CarbonSeries series = signal.forecast_series();
  const int g = std::stoi(series.source());
  if (series.size() != kPoints || g < previous) return -1;
  for (std::size_t i = 0; i < kPoints; ++i) {
    if (series.values()[i] != 10.0 * g + static_cast<double>(i)) return -1;
  }
  const auto periods = signal.forecast(4);
  if (periods.size() != 4) return -1;
  const int period_generation = static_cast<int>(periods[0].g_per_kwh) / 10;
  if (period_generation < g) return -1;  // taken after the series: same or newer
  for (std::size_t k = 0; k < periods.size(); ++k) {
    if (periods[k].g_per_kwh != 10.0 * period_generation + static_cast<double>(k)) return -1;
  }
  const double now = signal.intensity_now();
  if (now < 10.0 * period_generation || static_cast<int>(now) % 10 != 0) return -1;
  return static_cast<int>(now) / 10;
}

TEST_F(CarbonSignalContract, ReadersRacingRefreshesSeeWholeSnapshotsInOrder) {
  CarbonSignal signal(provider_, options());
  ASSERT_TRUE(signal.refresh());
  constexpr int kReaders = 4;
  constexpr int kGenerationsEachReaderSees = 5;
  std::atomic<int> readers_satisfied{0};
  std::atomic<bool> torn{false};
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&] {
      int last = 0;
      int changes = 0;
      // Reads until it has watched the data change several times: reads and refreshes overlap
      // by construction, whatever the scheduler does.
      while (changes < kGenerationsEachReaderSees && !torn && !stop) {
        const int g = check_snapshot(signal, last);
        if (g < 0) torn = true;
        if (g > last) ++changes;
        last = g;
      }
      if (changes >= kGenerationsEachReaderSees) ++readers_satisfied;
    });
  }
  int refreshes = 0;
  bool refresh_failed = false;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (readers_satisfied < kReaders && !torn && !refresh_failed &&
         std::chrono::steady_clock::now() < give_up) {
    refresh_failed = !signal.refresh();
    ++refreshes;
  }
  stop = true;
  for (auto& reader : readers) reader.join();
  EXPECT_FALSE(refresh_failed);
  EXPECT_FALSE(torn) << "a reader saw a torn or older snapshot";
  EXPECT_EQ(readers_satisfied, kReaders) << "readers never saw the data change";
  EXPECT_GE(refreshes, kGenerationsEachReaderSees);
}

}  // namespace
}  // namespace chase::testing
