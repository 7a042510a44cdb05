// LimitActuator: the job's power-limit changes, agreed across ranks, with the control error policy
// (contract: chase/limit_actuator.h).
#include "chase/limit_actuator.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "chase/error.h"

namespace chase {
namespace {

std::vector<std::size_t> job_gpus(const GpuBackend& backend, std::vector<std::size_t> selected) {
  if (selected.empty()) selected = healthy_gpu_indices(backend);
  if (selected.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "power-limit control needs at least one healthy GPU");
  }
  for (const auto gpu : selected) checked_healthy_gpu(backend.gpus(), gpu, "controlled");
  return selected;
}

// All GPUs of a job must share constraints: one limit is set on every one of them.
void check_shared_constraints(const GpuBackend& backend, const std::vector<std::size_t>& gpus) {
  const auto& first = checked_gpu(backend.gpus(), gpus.front());
  for (const auto gpu : gpus) {
    const auto& info = checked_gpu(backend.gpus(), gpu);
    if (info.min_power_limit_w != first.min_power_limit_w ||
        info.max_power_limit_w != first.max_power_limit_w) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("{} allows {}–{} W but {} allows {}–{} W; the GPUs of one job must "
                              "share power-limit constraints (select GPUs of one model)",
                              describe(info), info.min_power_limit_w, info.max_power_limit_w,
                              describe(first), first.min_power_limit_w, first.max_power_limit_w));
    }
  }
}

}  // namespace

LimitActuator::LimitActuator(std::shared_ptr<GpuBackend> backend, std::vector<std::size_t> gpus,
                             std::shared_ptr<Coordinator> coordinator)
    : backend_(std::move(backend)),
      gpus_(job_gpus(*backend_, std::move(gpus))),
      coordinator_(coordinator ? std::move(coordinator) : make_single_process_coordinator()),
      guard_(backend_) {
  check_shared_constraints(*backend_, gpus_);
  const auto& info = first_gpu();
  min_limit_w_ = info.min_power_limit_w;
  max_limit_w_ = info.max_power_limit_w;
  current_limit_w_ = max_limit_w_;
}

const GpuInfo& LimitActuator::first_gpu() const {
  return checked_gpu(backend_->gpus(), gpus_.front());
}

void LimitActuator::set(double watts) { set_all(watts); }

// Sets every GPU; when one refuses, the ones already changed go back to the limit in force, so the
// job never runs with GPUs at different limits, then the failure is rethrown.
void LimitActuator::set_all(double watts) {
  std::size_t changed = 0;
  try {
    for (; changed < gpus_.size(); ++changed) guard_.set_power_limit_w(gpus_[changed], watts);
  } catch (const Error&) {
    for (std::size_t i = 0; i < changed; ++i) {
      try {
        guard_.set_power_limit_w(gpus_[i], current_limit_w_);
      } catch (const Error& rollback) {
        spdlog::error("could not put GPU {} back to {} W: {}", gpus_[i], current_limit_w_,
                      rollback.what());
      }
    }
    throw;
  }
  current_limit_w_ = watts;
}

LimitChange LimitActuator::apply(double watts) {
  LimitChange change;
  change.requested_w = watts;
  try {
    change.requested_w = coordinator_->agree(watts);
  } catch (const Error& e) {  // a rank is gone: keep what is in force rather than diverge
    change.ok = false;
    change.limit_w = current_limit_w_;
    change.note = fmt::format("the ranks could not agree on {} W ({}); {} W stays in force", watts,
                              e.what(), current_limit_w_);
    spdlog::warn("power limit: {}", change.note);
    return change;
  }
  const double clamped = std::clamp(change.requested_w, min_limit_w_, max_limit_w_);
  if (clamped != change.requested_w) {
    change.note = fmt::format("{} W is outside the GPUs' {}–{} W; {} W set instead",
                              change.requested_w, min_limit_w_, max_limit_w_, clamped);
  }
  try {
    if (clamped != current_limit_w_) set_all(clamped);
  } catch (const Error& e) {
    change.ok = false;
    change.note = fmt::format("could not set {} W ({}); {} W stays in force until the next period",
                              clamped, e.what(), current_limit_w_);
    spdlog::warn("power limit: {}", change.note);
  }
  change.limit_w = current_limit_w_;
  return change;
}

}  // namespace chase
