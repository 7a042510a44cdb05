# The two commands of README.md: `make demo` and `make test`. Everything else is a helper.
BUILD_DIR    ?= build
JOBS         ?= $(shell nproc)
CMAKE_FLAGS  ?=

.PHONY: format-check demo test test-sanitize test-tsan fuzz consumer-check bench bench-forecast forecast-results carbon-results configure-release build-test deps clean format

demo: configure-release
	cmake --build $(BUILD_DIR)/release -j $(JOBS) --target chase_cli
	./$(BUILD_DIR)/release/chase demo --plot $(BUILD_DIR)/chase-demo.svg

test: build-test
	ctest --test-dir $(BUILD_DIR)/test --output-on-failure -j $(JOBS)

# The suite again under AddressSanitizer + UndefinedBehaviorSanitizer (CI runs it after `make test`).
# Tests labelled real_server (they start PostgreSQL, Prometheus, mpirun...) ran once in `make test`;
# the sanitizers instrument chase, not those servers, so they are not run again here. Neither are
# the deadline planner's real-data sweeps (5 regions x 12 starts of a year-long planner, ~30 s plain,
# over the 600 s limit under ASan at -O0): DeadlineSimulation.* runs the same code on small inputs.
test-sanitize: deps
	cmake -S . -B $(BUILD_DIR)/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCHASE_BUILD_BENCH=OFF \
	  -DCHASE_SANITIZE=address,undefined -DCHASE_WERROR=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR)/asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(BUILD_DIR)/asan --output-on-failure -j $(JOBS) -LE real_server \
	  -E '^DeadlineRealData\.'

# The concurrent components' tests under ThreadSanitizer (CI runs it too): one program, built in its
# own folder without the forecasters or the CLI (tests/CMakeLists.txt, chase_tsan_tests).
test-tsan: deps
	cmake -S . -B $(BUILD_DIR)/tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHASE_BUILD_BENCH=OFF \
	  -DCHASE_BUILD_EXAMPLES=OFF -DCHASE_SANITIZE=thread -DCHASE_WERROR=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR)/tsan -j $(JOBS) --target chase_tsan_tests
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 $(BUILD_DIR)/tsan/tests/chase_tsan_tests

# The libFuzzer targets of fuzz/ (clang, ASan + UBSan), each run FUZZ_SECONDS on its seed corpus
# (CI runs it after `make test`). Builds only the fuzz targets and the library components they use.
FUZZ_SECONDS ?= 8
fuzz: deps
	CC=clang CXX=clang++ cmake -S . -B $(BUILD_DIR)/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCHASE_FUZZ=ON -DCHASE_SANITIZE=address,undefined -DCHASE_BUILD_TESTS=OFF \
	  -DCHASE_BUILD_BENCH=OFF -DCHASE_BUILD_EXAMPLES=OFF $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR)/fuzz -j $(JOBS) --target chase_fuzzers
	fuzz/run $(BUILD_DIR)/fuzz $(FUZZ_SECONDS)

# Install build/test into a temporary prefix and build tests/consumer against chase::measure alone
# (`make test` runs the same check as the ctest test "consumer").
consumer-check: build-test
	scripts/consumer-check $(BUILD_DIR)/test

bench: configure-release
	cmake --build $(BUILD_DIR)/release -j $(JOBS) --target chase_bench_energy_monitor chase_bench_training \
	  chase_bench_recurring chase_bench_carbon_simulation
	./$(BUILD_DIR)/release/bench/chase_bench_energy_monitor
	./$(BUILD_DIR)/release/bench/chase_bench_training
	./$(BUILD_DIR)/release/bench/chase_bench_recurring
	./$(BUILD_DIR)/release/bench/chase_bench_carbon_simulation

# The forecasting results of docs/FORECASTING.md (needs the DACF data; a few minutes).
forecast-results: configure-release
	cmake --build $(BUILD_DIR)/release -j $(JOBS) --target chase_cli
	scripts/forecast-results $(BUILD_DIR)/release/chase

# The carbon-aware runs of docs/REPRODUCTION.md (needs ../shared/data; under a minute).
carbon-results: configure-release
	cmake --build $(BUILD_DIR)/release -j $(JOBS) --target chase_cli
	scripts/carbon-results $(BUILD_DIR)/release/chase

# Forecasting models vs scikit-learn on the chase protocol, same windows (docs/BENCHMARKS.md).
# Needs ../shared/data (or CHASE_DATA_DIR) and Debian's python3-sklearn.
bench-forecast: configure-release
	cmake --build $(BUILD_DIR)/release -j $(JOBS) --target chase_bench_forecast
	/usr/bin/python3 bench/compare_forecast_sklearn.py --bin $(BUILD_DIR)/release/bench/chase_bench_forecast

configure-release: deps
	cmake -S . -B $(BUILD_DIR)/release -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build-test: deps
	cmake -S . -B $(BUILD_DIR)/test -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHASE_WERROR=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR)/test -j $(JOBS)

deps:
	@scripts/install-deps

# Every tracked C++ file in .clang-format's style; CI fails on the first one that is not.
format:
	git ls-files '*.h' '*.cpp' | xargs clang-format -i

format-check:
	git ls-files '*.h' '*.cpp' | xargs clang-format --dry-run --Werror

clean:
	rm -rf $(BUILD_DIR)
