// Internal (CLI): how `chase simulate carbon` shows what it ran — reporters, the way
// google/benchmark separates reporting from running. The command runs a simulation or a sweep
// (chase/carbon_sweep.h), picks reporters from its flags and hands them the results:
//   ConsoleCarbonReporter  the summary table (the default), with every segment under --timeline;
//   JsonCarbonReporter     one JSON document (--json);
//   CsvCarbonReporter      every run of a sweep, one row each (--csv FILE); a single run has none.
// The sweep's SVG frontier is a separate writer (write_sweep_plot). Reporters write to a stream;
// the command opens and checks the files (cli/output_file.h). Not thread-safe: one command, one
// thread.
#pragma once

#include <ostream>

#include "chase/carbon_simulation.h"
#include "chase/carbon_sweep.h"
#include "chase/limit_policy.h"
#include "cli/simulate_carbon.h"

namespace chase::cli {

// One simulated run with the default policy's run from the same start, and what it was asked.
struct CarbonRunReport {
  const CarbonSimulationOptions& options;
  const PolicyParameters& parameters;
  const CarbonSimulationResult& result;
  const CarbonSimulationResult& baseline;
};

class CarbonReporter {
 public:
  virtual ~CarbonReporter() = default;
  virtual void report_run(const CarbonJob& job, const CarbonRunReport& run) = 0;
  virtual void report_sweep(const CarbonJob& job, const CarbonSweepResult& sweep) = 0;
};

class ConsoleCarbonReporter : public CarbonReporter {
 public:
  ConsoleCarbonReporter(std::ostream& out, bool timeline) : out_(out), timeline_(timeline) {}
  void report_run(const CarbonJob& job, const CarbonRunReport& run) override;
  void report_sweep(const CarbonJob& job, const CarbonSweepResult& sweep) override;

 private:
  std::ostream& out_;
  bool timeline_;
};

class JsonCarbonReporter : public CarbonReporter {
 public:
  explicit JsonCarbonReporter(std::ostream& out) : out_(out) {}
  void report_run(const CarbonJob& job, const CarbonRunReport& run) override;
  void report_sweep(const CarbonJob& job, const CarbonSweepResult& sweep) override;

 private:
  std::ostream& out_;
};

class CsvCarbonReporter : public CarbonReporter {
 public:
  explicit CsvCarbonReporter(std::ostream& out) : out_(out) {}
  void report_run(const CarbonJob&, const CarbonRunReport&) override {}  // a sweep option
  void report_sweep(const CarbonJob& job, const CarbonSweepResult& sweep) override;

 private:
  std::ostream& out_;
};

// The carbon-vs-time plane of a sweep as SVG: every configuration a point, the planner's and the
// oracle's slack sweeps as lines.
void write_sweep_plot(std::ostream& out, const CarbonJob& job, const CarbonSweepResult& sweep);

}  // namespace chase::cli
