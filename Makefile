# imgate — the two commands a new user runs are `make run` and `make test`.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CONFIG     ?= config/app.yaml

.PHONY: all build server deps deps-test run test test-fast test-asan fuzz fuzz-smoke soak bench c1m clean

all: build

deps:
	@scripts/deps.sh

deps-test:
	@scripts/deps.sh test

$(BUILD)/Makefile:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

# Everything: the server, the load generator (imgate-bench), the unit tests and the fuzz
# replayers. `make test` (and bench, soak, c1m) build this.
build: $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

# The server alone ($(BUILD)/imgate): all that `make run` needs, so a first run does not wait
# for the tests to compile.
server: $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS) --target imgate

run: deps server
	$(BUILD)/imgate -c $(CONFIG)

# Everything: the normal build and the ASan+UBSan build both run every test.
# scripts/ctest-strict.sh fails the run when a registered test was skipped or
# did not run, not only when one failed.
CTEST_ARGS ?= --output-on-failure -j 2 --timeout 300
test: deps-test build
	scripts/ctest-strict.sh $(BUILD) $(CTEST_ARGS)
	$(MAKE) test-asan
	$(MAKE) fuzz-smoke

test-fast: build
	scripts/ctest-strict.sh $(BUILD) $(CTEST_ARGS)

$(ASAN_BUILD)/Makefile:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DIMGATE_SANITIZE=ON

test-asan: $(ASAN_BUILD)/Makefile
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  scripts/ctest-strict.sh $(ASAN_BUILD) $(CTEST_ARGS)

# libFuzzer targets (tests/fuzz), built with clang; FUZZ_SECONDS per target.
$(FUZZ_BUILD)/Makefile:
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMGATE_FUZZ=ON

fuzz: $(FUZZ_BUILD)/Makefile
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_targets
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=10

# A 10-minute bounded soak against one node (not in CI): churn of connects,
# messages and disconnects; passes if nothing is lost and RSS stays flat.
SOAK_MINUTES ?= 10
soak: deps-test build
	/usr/bin/python3 bench/soak.py --minutes $(SOAK_MINUTES)

# One node, 10,000 connections, every scenario: bench/results/quick.{json,html}
bench: deps build
	bench/run.sh quick

# 1,000,000 connections over ~53 cluster nodes and Redis (root, ~11 GiB free,
# <= 25 min with its connect floors; raises and restores kernel settings): bench/results/c1m.*
c1m: deps-test build
	bench/run.sh c1m

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
