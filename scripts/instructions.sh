#!/usr/bin/env bash
# Instructions per call on the success path, counted by callgrind: stable on a busy machine.
# Usage: scripts/instructions.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
cargo bench -p self-healing-benches --bench instructions --no-run 2>/dev/null
bin=$(ls -t target/release/deps/instructions-* | grep -v '\.d$' | head -n1)
count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
printf '%-10s %s\n' variant instructions/call
for v in bare attribute heal_blocking backon recloser bare_async attribute_async tower_async backon_async; do
  base=$(count "$v" 0)
  full=$(count "$v" "$n")
  awk -v a="$full" -v b="$base" -v n="$n" -v v="$v" 'BEGIN { printf "%-10s %.1f\n", v, (a - b) / n }'
done
