#!/bin/sh
# `chase serve` under load on loopback (docs/BENCHMARKS.md "Recurring store"): runs
# chase_bench_store_server against a served SQLite store and against a throw-away PostgreSQL 15
# cluster this script starts (initdb into a temporary folder, a Unix socket there, as user nobody
# when run as root) and removes afterwards, REPEAT times each, printing the load average first.
#
#   bench/store_server_load.sh [BUILD_DIR]     (default build/test)
# After each PostgreSQL round it prints its commits, WAL flushes (fsyncs) and their mean time.
# Environment:
#   REPEAT=3                 rounds of each benchmark
#   MIN_TIME=2               --benchmark_min_time of each run (seconds)
#   PG_OPTIONS='...'         extra server settings, e.g. "-c synchronous_commit=off" (an operator's
#                            choice; the default is PostgreSQL's own durability, fsync per commit)
#   ONLY=sqlite|postgres     one store only
set -eu

build=${1:-build/test}
bench="$build/bench/chase_bench_store_server"
repeat=${REPEAT:-3}
min_time=${MIN_TIME:-2}
[ -x "$bench" ] || { echo "no $bench: build the target chase_bench_store_server first" >&2; exit 2; }

run_rounds() {  # filter
  i=1
  while [ "$i" -le "$repeat" ]; do
    echo "== $1, round $i, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    "$bench" --benchmark_filter="$1" --benchmark_min_time="$min_time" 2>&1 | grep '^BM_'
    i=$((i + 1))
  done
}

if [ "${ONLY:-sqlite}" = sqlite ] || [ -z "${ONLY:-}" ]; then
  run_rounds 'Served.*Sqlite'
fi
[ "${ONLY:-postgres}" = postgres ] || exit 0

pg_bin=""
for candidate in /usr/lib/postgresql/*/bin; do pg_bin=$candidate; done  # Debian installs one
[ -x "$pg_bin/initdb" ] || { echo "PostgreSQL server binaries not found: skipping it" >&2; exit 0; }
dir=$(mktemp -d /tmp/chase_bench_pg.XXXXXX)
as_user=""
if [ "$(id -u)" = 0 ]; then
  chown nobody "$dir"
  as_user="setpriv --reuid=nobody --regid=$(id -g nobody) --clear-groups"
fi
stop() {
  $as_user "$pg_bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT INT TERM
$as_user "$pg_bin/initdb" -D "$dir/data" -A trust -U chase -E UTF8 >"$dir/init.log" 2>&1
$as_user "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-c listen_addresses='' -k $dir -c max_connections=50 -c track_wal_io_timing=on ${PG_OPTIONS:-}" \
  start >/dev/null
$as_user "$pg_bin/createdb" -h "$dir" -U chase bench
echo "PostgreSQL: $($as_user "$pg_bin/postgres" --version), settings: ${PG_OPTIONS:-default}"
# Where the time goes, after each round: its commits against its WAL flushes (fsyncs) and their
# mean time. With PostgreSQL's default durability each commit waits for a flush of the WAL up to
# its record; concurrent commits can share one (group commit).
wal_stats() {
  psql -h "$dir" -U chase -d bench -At -F ' ' -c "
    SELECT '   commits', xact_commit, 'wal_syncs', wal_sync, 'commits_per_sync',
           round(xact_commit::numeric / greatest(wal_sync, 1), 2), 'ms_per_sync',
           round((wal_sync_time / greatest(wal_sync, 1))::numeric, 3), 'ms_per_write',
           round((wal_write_time / greatest(wal_write, 1))::numeric, 3)
    FROM pg_stat_database, pg_stat_wal WHERE datname = 'bench'" \
    -c "SELECT pg_stat_reset(), pg_stat_reset_shared('wal')" | grep commits
}
export CHASE_BENCH_POSTGRES_URL="postgresql:///bench?host=$dir&user=chase"
for threads in 1 8; do
  i=1
  while [ "$i" -le "$repeat" ]; do
    wal_stats >/dev/null
    echo "== Postgres, $threads clients, round $i, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    "$bench" --benchmark_filter="Postgres/real_time/threads:$threads\$" \
      --benchmark_min_time="$min_time" 2>&1 | grep '^BM_'
    wal_stats
    i=$((i + 1))
  done
done
