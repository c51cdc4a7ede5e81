# Thin wrapper around Meson + Ninja. Two entry points for a fresh machine:
#   make run    install what is missing, build, run the demo in a fresh VM
#   make test   install what is missing, build, run every test
BUILD      ?= build
BUILD_ASAN ?= build-asan
PYTEST     ?= /usr/bin/python3 -m pytest

.PHONY: all deps build run test unit asan e2e bench format format-check clean linux-assets

all: build

deps:
	@scripts/deps.sh

build: deps
	@[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD)
	ninja -C $(BUILD)

run: build
	@scripts/demo.sh $(BUILD)

unit: build
	meson test -C $(BUILD) --suite unit --print-errorlogs

asan: deps
	@[ -f $(BUILD_ASAN)/build.ninja ] || meson setup $(BUILD_ASAN) -Db_sanitize=address,undefined \
		-Db_lundef=false -Dbuildtype=debug -Dc_args=-fno-sanitize-recover=all
	ninja -C $(BUILD_ASAN)
	meson test -C $(BUILD_ASAN) --suite unit --print-errorlogs

# pvm (issue 4): the Debian kernel + initramfs for tests/e2e/test_linux.py,
# cached in ~/.cache/nubis/linux (guest/linux/build.sh; nothing is installed)
linux-assets:
	guest/linux/build.sh

e2e: build linux-assets
	NUBIS_BUILD=$(abspath $(BUILD)) $(PYTEST) tests/e2e -q -rfE

test: unit asan format-check e2e

bench: build
	@scripts/deps.sh bench
	bench/run.sh $(BUILD)

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/unit/*.c' 'bench/*.c')

format-check:
	@clang-format --dry-run --Werror $$(git ls-files 'src/*.c' 'src/*.h' 'tests/unit/*.c' 'bench/*.c') \
		&& echo "format: clean"

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)

# --- workloads (issue 3): real servers for service VMs -----------------------
# Static musl Redis and SQLite shell from Debian source packages, built into
# $(BUILD)/guest/{redis,sqlite}/ (cached in ~/.cache/nubis: only a fresh
# machine compiles, ~72 s on 2 cores; the first time also needs Debian's apt mirror).
# The e2e tests use them (tests/e2e/test_workloads.py), so `make test` and
# `make e2e` build them first.
.PHONY: workloads
workloads: deps
	guest/redis/build.sh $(BUILD)/guest/redis
	guest/sqlite/build.sh $(BUILD)/guest/sqlite
e2e: workloads
test: workloads
bench: workloads
# --- end workloads -------------------------------------------------------------
