#!/usr/bin/env bash
# chased's idle CPU use: start it over the fake NVML with 8 GPUs (no client, no scrapes), let it
# settle, then read its user+system CPU time from /proc/<pid>/stat over SECONDS seconds (default
# 60). A second figure covers the same time with a Prometheus-like scrape every 15 s.
# Usage: bench/chased_idle_cpu.sh BUILD_DIR [SECONDS]
set -euo pipefail
build=${1:?usage: bench/chased_idle_cpu.sh BUILD_DIR [SECONDS]}
seconds=${2:-60}
work=$(mktemp -d)
daemon_pid=
cleanup() { [[ -n $daemon_pid ]] && kill "$daemon_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
python3 - "$work/config.json" <<'PY'
import json, sys
gpus = [dict(name="NVIDIA A40", uuid="GPU-00000000-0000-0000-0000-%012d" % i, architecture="ampere",
             min_limit_w=100, max_limit_w=300, default_limit_w=300, limit_w=300, idle_power_w=30,
             max_power_w=280, load=0.5, energy_counter=True, initial_energy_j=1000000)
        for i in range(8)]
json.dump({"driver_version": "550.54.15", "gpus": gpus}, open(sys.argv[1], "w"))
PY
export CHASE_NVML_LIBRARY="$build/tests/libfake_nvml.so" FAKE_NVML_CONFIG="$work/config.json"
"$build/chased" --socket "$work/s.sock" --state-dir "$work/state" --metrics-listen 127.0.0.1:0 \
  >"$work/log" 2>&1 &
daemon_pid=$!
sleep 2
port=$(grep -o 'metrics on 127.0.0.1:[0-9]*' "$work/log" | cut -d: -f2)
ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$daemon_pid/stat"; }
measure() {  # $1: label, $2: scrape period (0: none)
  local start end
  start=$(cpu_ticks)
  if (($2 > 0)); then
    for ((t = 0; t < seconds; t += $2)); do
      curl -s "http://127.0.0.1:$port/metrics" >/dev/null
      sleep "$2"
    done
  else
    sleep "$seconds"
  fi
  end=$(cpu_ticks)
  python3 -c "print(f'$1: {($end - $start) / $ticks:.3f} s CPU in $seconds s = {100 * ($end - $start) / $ticks / $seconds:.3f} % of one core')"
}
measure "idle" 0
measure "scraped every 15 s" 15
