#!/usr/bin/env bash
# Time-boxed libFuzzer run of tests/fuzz/fuzz_image.c (image parsers and the
# layer unpacker) under ASan+UBSan. Fails on any crash, leak or sanitizer
# report. New interesting inputs go to a scratch corpus, not the committed one.
#
# Usage: tests/fuzz/run-image.sh [SECONDS]   (default 60)
set -euo pipefail
secs=${1:-60}
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp -d /tmp/nubis-fuzz-image.XXXXXX)
trap 'rm -rf "$out"' EXIT
# shellcheck disable=SC2046
clang -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I"$repo/src" "$repo/tests/fuzz/fuzz_image.c" "$repo"/src/image/{oci,layer,digest,libs}.c \
    "$repo/src/common/error.c" "$repo/src/common/log.c" "$repo/src/common/dir.c" \
    $(pkg-config --cflags libarchive libcrypto) $(pkg-config --cflags --libs jansson) -ldl \
    -o "$out/fuzz_image"
mkdir "$out/corpus"
cp "$repo"/tests/fuzz/corpus/image/* "$out/corpus/"
cd "$out"
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ./fuzz_image -max_total_time="$secs" -max_len=65536 -rss_limit_mb=1024 -timeout=10 \
    -print_final_stats=1 corpus
