// Test helper: small hand-made Zeus traces (docs/ALGORITHMS.md §6); the V100 one is written to a
// temporary folder by the SmallZeusTrace fixture.
// imagenet, default batch 256, 250 W the file's highest limit: batch sizes 128, 256 and 512, limits
// 150 and 250 W (128 only at 250 W), batch 128's second run never converges, and rows of another
// target, dataset and optimizer that loading must ignore.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "chase/zeus_trace.h"

namespace chase::testing {

constexpr const char* kSmallTracePower =
    "dataset,network,batch_size,optimizer,power_limit,time_per_epoch,average_power\n"
    "imagenet,resnet50,256,adadelta,250,100,200\n"
    "imagenet,resnet50,256,adadelta,150,120,140\n"
    "imagenet,resnet50,512,adadelta,250,60,240\n"
    "imagenet,resnet50,512,adadelta,150,80,150\n"
    "imagenet,resnet50,128,adadelta,250,150,180\n"
    "imagenet,resnet50,256,adam,250,1,1\n"
    "cifar100,shufflenetv2,1024,adadelta,250,1,1\n";
constexpr const char* kSmallTraceTrain =
    "dataset,network,batch_size,optimizer,learning_rate,run,target_metric,target_epoch\n"
    "imagenet,resnet50,256,adadelta,0.1,1,0.65,10\n"
    "imagenet,resnet50,256,adadelta,0.1,2,0.65,14\n"
    "imagenet,resnet50,256,adadelta,0.1,1,0.70,30\n"
    "imagenet,resnet50,512,adadelta,0.1,1,0.65,20\n"
    "imagenet,resnet50,512,adadelta,0.1,2,0.65,22\n"
    "imagenet,resnet50,128,adadelta,0.1,1,0.65,8\n"
    "imagenet,resnet50,128,adadelta,0.1,2,0.65,nan\n";

// An A40 trace for one carbon-aware job: batch 256 at 300 W → 100 s at 200 W (20 kJ), 200 W →
// 120 s at 150 W (18 kJ), 100 W → 200 s at 100 W (20 kJ); batch 512 there so that the profile must
// be cut from the right rows. Files summary_power_a40.csv and summary_train.csv.
constexpr const char* kSmallA40TracePower =
    "dataset,network,batch_size,optimizer,power_limit,time_per_epoch,average_power\n"
    "imagenet,resnet50,256,adadelta,300,100,200\n"
    "imagenet,resnet50,256,adadelta,200,120,150\n"
    "imagenet,resnet50,256,adadelta,100,200,100\n"
    "imagenet,resnet50,512,adadelta,300,60,240\n"
    "imagenet,resnet50,512,adadelta,200,80,150\n"
    "imagenet,resnet50,512,adadelta,100,150,90\n";
constexpr const char* kSmallA40TraceTrain =
    "dataset,network,batch_size,optimizer,learning_rate,run,target_metric,target_epoch\n"
    "imagenet,resnet50,256,adadelta,0.1,1,0.65,10\n"
    "imagenet,resnet50,512,adadelta,0.1,1,0.65,20\n";

// A fixture owning the trace folder (removed after the test).
class SmallZeusTrace : public ::testing::Test {
 protected:
  SmallZeusTrace()
      : dir_(std::filesystem::temp_directory_path() /
             ("chase_small_zeus_trace_" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir_);
    write("summary_power_v100.csv", kSmallTracePower);
    write("summary_train.csv", kSmallTraceTrain);
  }
  ~SmallZeusTrace() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / name) << text;
  }
  ZeusTrace load() const { return ZeusTrace::load(dir_, "v100", zeus_workload("imagenet")); }

  std::filesystem::path dir_;
};

// The real traces' folder: $CHASE_DATA_DIR/zeus-trace, else the default data folder's.
inline std::filesystem::path real_zeus_trace_dir() {
  const char* env = std::getenv("CHASE_DATA_DIR");
  return std::filesystem::path(env ? env : CHASE_DEFAULT_DATA_DIR) / "zeus-trace";
}

}  // namespace chase::testing
