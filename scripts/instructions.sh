#!/usr/bin/env bash
# Instructions per call on the success path, counted by callgrind: stable on a busy machine.
# Usage: scripts/instructions.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
cargo bench -p self-healing-benches --bench instructions --no-run 2>/dev/null
bin=$(ls -t target/release/deps/instructions-* | grep -v '\.d$' | head -n1)
count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "${@:3}" "$bin" "$1" "$2" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
per_call() {
  local v=$1 calls=$2; shift 2
  base=$(count "$v" 0 "$@")
  full=$(count "$v" "$calls" "$@")
  awk -v a="$full" -v b="$base" -v n="$calls" -v v="$v" 'BEGIN { printf "%-16s %.1f\n", v, (a - b) / n }'
}
printf '%-16s %s\n' variant instructions/call
for v in bare attribute heal_blocking backon recloser bare_async attribute_async tower_async backon_async; do
  per_call "$v" "$n"
done
# A call healed by one re-run: only the caller's work inside the wrapped function is counted
# (the event worker runs on a thread of its own); fewer calls, each costs thousands.
healed=$(( n / 20 > 0 ? n / 20 : 1 ))
per_call healed "$healed" --toggle-collect='*instr_heals_once*'
per_call healed_async "$healed" --toggle-collect='*instr_poll_heals_once_async*'
