# Makefile: the README's commands, wrapped around CMake and CTest.
#
#   make demo    install build deps, build build/, run the crash demo,
#                then walrus stat and walrus verify on its log
#   make test    install test deps; build build/ (-Werror) and run every
#                test; then build build-asan/ (ASan + UBSan, Debug) and run
#                every test again; then the thread stress programs under
#                TSan (build-tsan/); then the contract tests on xfs, btrfs
#                and tmpfs loop mounts (root; skipped, saying so, where
#                mounting is refused); exits non-zero if anything failed
#   make bench   build build/ and run the benchmarks, then bench_peers
#                (walrus beside RocksDB, LevelDB, SQLite, LMDB and raw
#                loops): build/bench-peers.csv, docs/bench-threads.png
#   make soak    run the crash and raft tests with WALRUS_SOAK set (more
#                iterations, 100 raft kill cycles), then every contract
#                test on xfs, btrfs and tmpfs
#   make fuzz    build build-fuzz/ with clang (libFuzzer + ASan + UBSan) and
#                run each fuzz/fuzz_*.c target FUZZ_SECONDS on its corpus
#   make tsan    build build-tsan/ (ThreadSanitizer), run tests/*/stress_*
#   make clean   remove every build directory
#
# Variables: JOBS (2), BUILD_TYPE (RelWithDebInfo), WALRUS_SOAK (1),
# SOAK_TIMEOUT (seconds per crash test program under soak, 3600),
# FUZZ_SECONDS (per fuzz target, 60), FUZZ_TARGETS (all), FUZZ_ARGS (extra
# libFuzzer flags, e.g. -jobs=2),
# DEMO_ARGS, BENCHES, PEERS_ARGS (bench_peers options, e.g. -q),
# CTEST_ARGS (extra ctest arguments, e.g. -R test_crc32c).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build
MAKEFLAGS += --no-print-directory

CMAKE ?= cmake
CTEST ?= ctest
JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo
BUILD_DIR ?= build
ASAN_DIR ?= build-asan
TSAN_DIR ?= build-tsan
TEST_TIMEOUT ?= 300
SOAK_TIMEOUT ?= 3600
WALRUS_SOAK ?= 1
SOAK_LABELS ?= ^(crash|raft)$$
FS_LIST ?= xfs btrfs tmpfs
DEMO_ARGS ?=
BENCHES ?= bench_crc32c bench_core bench_read bench_follow
PEERS_ARGS ?=
CTEST_ARGS ?=

DEPS := sh scripts/install-deps.sh
CTEST_RUN := $(CTEST) --output-on-failure --no-tests=error -j$(JOBS) $(CTEST_ARGS)

# Sanitizer run-time options for the sanitized test runs.  Criterion runs
# each test in a forked worker; LeakSanitizer reports when that worker exits,
# and CMake marks any sanitizer report in a test's output as a failure.
ASAN_RUN_OPTIONS ?= detect_leaks=1
UBSAN_RUN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
TSAN_RUN_OPTIONS ?= halt_on_error=1:second_deadlock_stack=1

# Logs of the ctest runs of `make test`, read for the closing summary.
RELEASE_LOG := $(BUILD_DIR)/ctest-release.log
ASAN_LOG := $(ASAN_DIR)/ctest-asan.log
TSAN_LOG := $(TSAN_DIR)/ctest-tsan.log

.PHONY: build configure demo test test-release test-asan test-fs bench soak tsan \
        fuzz clean format tidy help

help:
	@sed -n '2,23s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

# ---------------------------------------------------------------------------
# Plain build of build/ (the default goal).
# ---------------------------------------------------------------------------
configure:
	$(DEPS) test
	$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: configure
	$(CMAKE) --build $(BUILD_DIR) -j$(JOBS)

# ---------------------------------------------------------------------------
# The demo: writes, SIGKILLs a child writer, reopens, checks, then shows
# `walrus stat` and `walrus verify` on the demo's log.  It needs no test
# framework, so tests are left out of this configure.  It runs with
# build/ as its working directory.
# ---------------------------------------------------------------------------
demo:
	$(DEPS) build
	$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DWALRUS_BUILD_TESTS=OFF
	$(CMAKE) --build $(BUILD_DIR) -j$(JOBS)
	@args="$(DEMO_ARGS)"; \
	if [ -z "$$args" ]; then args=$$(mktemp -d /tmp/walrus-demo-XXXXXX); fi; \
	(cd $(BUILD_DIR) && ./examples/crash_demo $$args); \
	dir=$${args%% *}; \
	echo; echo "$$ walrus stat $$dir"; $(BUILD_DIR)/tools/walrus stat "$$dir"; \
	echo; echo "$$ walrus verify $$dir"; $(BUILD_DIR)/tools/walrus verify "$$dir"

# ---------------------------------------------------------------------------
# Tests.  Both suites run even when the first fails; the closing line sums
# them up as "summary: N passed, N failed".
# ---------------------------------------------------------------------------
test:
	$(DEPS) test
	@status=0; \
	rm -f $(RELEASE_LOG) $(ASAN_LOG) $(TSAN_LOG); \
	$(MAKE) --no-print-directory test-release || status=1; \
	$(MAKE) --no-print-directory test-asan || status=1; \
	$(MAKE) --no-print-directory tsan || status=1; \
	$(MAKE) --no-print-directory test-fs || status=1; \
	passed=0; failed=0; missing=0; \
	for run in "release:$(RELEASE_LOG)" "asan+ubsan:$(ASAN_LOG)" \
	           "tsan:$(TSAN_LOG)"; do \
	  name=$${run%%:*}; log=$${run#*:}; \
	  line=$$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' \
	          "$$log" 2>/dev/null | tail -n 1 || true); \
	  if [ -z "$$line" ]; then \
	    echo "$$name: no test results (the build or ctest failed)"; \
	    status=1; missing=1; continue; \
	  fi; \
	  echo "$$name: $$line"; \
	  f=$$(echo "$$line" | sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/'); \
	  t=$$(echo "$$line" | sed -E 's/.* out of ([0-9]+).*/\1/'); \
	  passed=$$((passed + t - f)); failed=$$((failed + f)); \
	done; \
	for fs in $(FS_LIST); do \
	  log=$(BUILD_DIR)/ctest-fs-$$fs.log; \
	  line=$$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' \
	          "$$log" 2>/dev/null | tail -n 1 || true); \
	  [ -n "$$line" ] || continue; \
	  f=$$(echo "$$line" | sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/'); \
	  t=$$(echo "$$line" | sed -E 's/.* out of ([0-9]+).*/\1/'); \
	  passed=$$((passed + t - f)); failed=$$((failed + f)); \
	done; \
	cat $(BUILD_DIR)/fs-matrix.log 2>/dev/null || true; \
	if [ $$missing -eq 0 ]; then \
	  echo "summary: $$passed passed, $$failed failed"; \
	else \
	  echo "summary: FAILED before every suite could run"; \
	fi; \
	exit $$status

test-release:
	$(DEPS) test
	$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DWALRUS_BUILD_TESTS=ON -DWALRUS_WERROR=ON \
	  -DWALRUS_TEST_TIMEOUT=$(TEST_TIMEOUT)
	$(CMAKE) --build $(BUILD_DIR) -j$(JOBS)
	cd $(BUILD_DIR) && $(CTEST_RUN) 2>&1 | tee $(abspath $(RELEASE_LOG))

# The contract tests again on xfs, btrfs and tmpfs (loop-mounted images,
# root only; a file system that cannot be mounted is reported as skipped),
# from build/ as test-release built it.
test-fs:
	$(DEPS) test
	rm -f $(BUILD_DIR)/fs-matrix.log
	sh scripts/fs-matrix.sh $(BUILD_DIR) $(FS_LIST) 2>&1 | \
	  tee $(BUILD_DIR)/fs-matrix.log

test-asan:
	$(DEPS) test
	$(CMAKE) -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug \
	  -DWALRUS_ASAN=ON -DWALRUS_UBSAN=ON -DWALRUS_WERROR=ON \
	  -DWALRUS_BUILD_TESTS=ON -DWALRUS_BUILD_BENCH=OFF \
	  -DWALRUS_TEST_TIMEOUT=$(TEST_TIMEOUT)
	$(CMAKE) --build $(ASAN_DIR) -j$(JOBS)
	cd $(ASAN_DIR) && \
	  ASAN_OPTIONS=$(ASAN_RUN_OPTIONS) UBSAN_OPTIONS=$(UBSAN_RUN_OPTIONS) \
	  $(CTEST_RUN) 2>&1 | tee $(abspath $(ASAN_LOG))

# ThreadSanitizer, for the concurrency tests (the third stage of `make
# test`).  Criterion cannot start under TSan, so this runs only the
# standalone programs, tests/*/stress_*.c.
tsan:
	$(DEPS) test
	$(CMAKE) -S . -B $(TSAN_DIR) -DCMAKE_BUILD_TYPE=Debug \
	  -DWALRUS_TSAN=ON -DWALRUS_WERROR=ON -DWALRUS_BUILD_TESTS=ON \
	  -DWALRUS_BUILD_BENCH=OFF -DWALRUS_TEST_TIMEOUT=$(TEST_TIMEOUT)
	$(CMAKE) --build $(TSAN_DIR) -j$(JOBS)
	cd $(TSAN_DIR) && TSAN_OPTIONS=$(TSAN_RUN_OPTIONS) \
	  $(CTEST) --output-on-failure -j$(JOBS) -L standalone $(CTEST_ARGS) \
	  2>&1 | tee $(abspath $(TSAN_LOG))

# ---------------------------------------------------------------------------
# Benchmarks: built in build/ (optimized) and run from it, so their data
# lands on the build tree's file system, not a tmpfs.
# ---------------------------------------------------------------------------
bench:
	$(DEPS) bench
	$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DWALRUS_BUILD_BENCH=ON -DWALRUS_BUILD_TESTS=OFF
	$(CMAKE) --build $(BUILD_DIR) -j$(JOBS)
	@ran=0; \
	for b in $(BENCHES); do \
	  if [ -x $(BUILD_DIR)/bench/$$b ]; then \
	    echo "== $$b"; \
	    (cd $(BUILD_DIR) && ./bench/$$b); \
	    ran=$$((ran + 1)); \
	  fi; \
	done; \
	if [ $$ran -eq 0 ]; then echo "bench: no benchmark was built" >&2; exit 1; fi
	@if [ -x $(BUILD_DIR)/bench/bench_peers ]; then \
	  echo "== bench_peers"; \
	  (cd $(BUILD_DIR) && ./bench/bench_peers -o bench-peers.csv $(PEERS_ARGS)); \
	  if command -v gnuplot >/dev/null 2>&1; then \
	    gnuplot -e "csv='$(BUILD_DIR)/bench-peers.csv'; png='$(BUILD_DIR)/bench-threads.png'" \
	      bench/plot_threads.gp; \
	    mkdir -p docs; cp $(BUILD_DIR)/bench-threads.png docs/bench-threads.png; \
	    echo "bench: $(BUILD_DIR)/bench-peers.csv, $(BUILD_DIR)/bench-threads.png, docs/bench-threads.png"; \
	  else \
	    echo "bench: no gnuplot (scripts/install-deps.sh bench): chart not drawn" >&2; \
	  fi; \
	else \
	  echo "bench: bench_peers was not built" >&2; exit 1; \
	fi

# ---------------------------------------------------------------------------
# Soak: the crash and raft tests with WALRUS_SOAK=$(WALRUS_SOAK) (the crash
# tests multiply their iterations by it; test_raft_kill runs 100 SIGKILL
# cycles) and a longer CTest timeout.  `make test` sets the timeout back.
# ---------------------------------------------------------------------------
soak:
	$(DEPS) test
	$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DWALRUS_BUILD_TESTS=ON -DWALRUS_TEST_TIMEOUT=$(SOAK_TIMEOUT)
	$(CMAKE) --build $(BUILD_DIR) -j$(JOBS)
	cd $(BUILD_DIR) && WALRUS_SOAK=$(WALRUS_SOAK) $(CTEST_RUN) -L '$(SOAK_LABELS)'
	FS_MATRIX=full sh scripts/fs-matrix.sh $(BUILD_DIR) $(FS_LIST)

# ---------------------------------------------------------------------------
# Fuzzing: clang's libFuzzer with ASan and UBSan, in build-fuzz/.  Each
# target runs FUZZ_SECONDS on fuzz/corpus/<target>/ (read, never written);
# new inputs go to build-fuzz/fuzz-corpus/<target>/ and crashing ones to
# build-fuzz/fuzz-artifacts/.  Exits non-zero if a target finds a crash.
# The same corpus is replayed by test_fuzz_corpus in every `make test`.
# ---------------------------------------------------------------------------
FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_MAX_LEN ?= 65536
FUZZ_TARGETS ?= $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_ARGS ?=
FUZZ_CC ?= clang

fuzz:
	@command -v $(FUZZ_CC) >/dev/null || { echo "fuzz: $(FUZZ_CC) not found (apt-get install clang libclang-rt-dev)" >&2; exit 1; }
	CC=$(FUZZ_CC) $(CMAKE) -S . -B $(FUZZ_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DWALRUS_BUILD_FUZZ=ON -DWALRUS_ASAN=ON -DWALRUS_UBSAN=ON \
	  -DWALRUS_BUILD_TESTS=OFF -DWALRUS_BUILD_EXAMPLES=OFF \
	  -DWALRUS_BUILD_BENCH=OFF -DWALRUS_BUILD_SHARED=OFF
	$(CMAKE) --build $(FUZZ_DIR) -j$(JOBS) --target $(FUZZ_TARGETS)
	@status=0; \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/fuzz-corpus/$$t $(FUZZ_DIR)/fuzz-artifacts; \
	  echo "== $$t: $(FUZZ_SECONDS) s"; \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(FUZZ_DIR)/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=$(FUZZ_MAX_LEN) -print_final_stats=1 \
	    -artifact_prefix=$(abspath $(FUZZ_DIR))/fuzz-artifacts/$$t- $(FUZZ_ARGS) \
	    $(FUZZ_DIR)/fuzz-corpus/$$t fuzz/corpus/$$t \
	    2>&1 | tee $(FUZZ_DIR)/fuzz-$$t.log | grep -E '^(#[0-9]+\s+(DONE|pulse))|stat::|ERROR|SUMMARY|==[0-9]+==|check failed' || true; \
	  if grep -qE 'ERROR: |SUMMARY: |deadly signal|check failed' $(FUZZ_DIR)/fuzz-$$t.log; then \
	    echo "fuzz: $$t found a failure: see $(FUZZ_DIR)/fuzz-$$t.log and $(FUZZ_DIR)/fuzz-artifacts/"; \
	    status=1; \
	  fi; \
	done; \
	exit $$status

# ---------------------------------------------------------------------------
# Housekeeping.
# ---------------------------------------------------------------------------
clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(TSAN_DIR) build-fuzz

# Reformats the C sources in place with .clang-format.
format:
	find $$(ls -d src include tests examples bench tools fuzz 2>/dev/null || true) \
	  -name '*.[ch]' | xargs -r clang-format -i

# Runs clang-tidy (.clang-tidy) over the library with build/'s flags.
tidy: configure
	clang-tidy -p $(BUILD_DIR) --quiet src/*.c
