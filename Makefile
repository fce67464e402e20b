# Wrapper over Meson for the common targets.  `make check` is the one
# command that builds and runs every test (README).
BUILD      ?= build
ASAN_BUILD ?= build-asan
PYTHON     ?= /usr/bin/python3
MESON_OPTS ?=
JOBS       ?= $(shell nproc)

.PHONY: all build asan check unit unit-asan integration integration-strict fuzz fuzz-smoke guest guest-generic run bench clean

all: build

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=release -Dwerror=true $(MESON_OPTS)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=true $(MESON_OPTS)

asan: $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

unit: build
	meson test -C $(BUILD) --suite unit --print-errorlogs --num-processes $(JOBS)

unit-asan: asan
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=0 \
	  meson test -C $(ASAN_BUILD) --suite unit --print-errorlogs --num-processes $(JOBS)

guest:
	scripts/build-guest

# The second guest: Debian's generic kernel, for the tests that need its
# drivers (the ACPI AC adapter and battery); in the cache's generic/.
guest-generic:
	scripts/build-guest --variant generic

integration: build
	VESSEL_BIN=$(abspath $(BUILD))/vessel VESSEL_BUILD=$(abspath $(BUILD)) \
	  $(PYTHON) -m pytest -q -rs $(PYTEST_OPTS) tests/integration

# `make check`'s run: the guests first (cached: built once per kernel and
# busybox version), so that every Linux test runs, and a test that skips
# for anything but a missing /dev/kvm fails (conftest.py).
integration-strict: build guest guest-generic
	$(MAKE) integration PYTEST_OPTS=--strict-skips

fuzz:
	scripts/run-fuzzers

# Every fuzz target for a short budget under ASan, as part of `make check`.
fuzz-smoke:
	scripts/run-fuzzers --time 15

check: unit unit-asan integration-strict fuzz-smoke

run: build guest
	scripts/run-default-guest

bench: build
	bench/run-all

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
