// A client the chased tests kill: opens the GPUs through chased ($CHASE_DAEMON), sets GPU <index>
// to <watts> W, prints "limit set" and waits to be killed. Usage: chased_client_helper INDEX WATTS
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "chase/daemon_client.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: chased_client_helper INDEX WATTS\n");
    return 2;
  }
  try {
    const auto address = chase::daemon_address_from_environment();
    if (!address) {
      std::fprintf(stderr, "CHASE_DAEMON is not set\n");
      return 2;
    }
    auto gpus = chase::open_daemon_gpus(*address);
    gpus->set_power_limit_w(std::strtoul(argv[1], nullptr, 10), std::strtod(argv[2], nullptr));
    std::printf("limit set\n");
    std::fflush(stdout);
    while (true) ::pause();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chased_client_helper: %s\n", e.what());
    return 1;
  }
}
