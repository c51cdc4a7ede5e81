#!/usr/bin/env bash
# The `make run` demo: a Lua program in a fresh function VM, then the same
# run twice more to show it is deterministic, with the time each took.
set -euo pipefail
build=${1:-build}
nubis="$build/nubis"
lua="$build/guest/lua/lua"
script=guest/examples/fib.lua

echo "== host"
"$nubis" info | grep -E 'flavour|guest_ring0'
echo
echo "== nubis run: Lua 5.4 (static, musl) running $script in a fresh KVM VM"
start=$(date +%s%N)
"$nubis" run --channel "/app/fib.lua=$script:r" "$lua" /app/fib.lua
end=$(date +%s%N)
echo "-- whole command (process start, VM, Lua, exit): $(( (end - start) / 1000 )) us"
echo
echo "== determinism: the same VM twice, outputs compared"
a=$("$nubis" run --channel "/app/det.lua=guest/examples/det.lua:r" "$lua" /app/det.lua)
b=$("$nubis" run --channel "/app/det.lua=guest/examples/det.lua:r" "$lua" /app/det.lua)
echo "$a"
if [ "$a" = "$b" ]; then echo "-- identical output in two fresh VMs"; else echo "-- outputs differ!"; exit 1; fi
