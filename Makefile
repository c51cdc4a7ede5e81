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
