#!/bin/sh
# cli_figures.sh: the walrus command's figures in docs/BENCHMARKS.md:
# `walrus dump --data none` of 10 million entries to /dev/null, and
# `walrus verify` of a warm ~1.4 GB log beside `cat DIR/* > /dev/null`,
# each the median of RUNS runs, in one run of this script.
#
# Usage: bench/cli_figures.sh [BUILD_DIR [WORK_DIR [RUNS]]]
#   BUILD_DIR  where build/tools/walrus is (build)
#   WORK_DIR   where the two logs are written (a fresh directory under
#              BUILD_DIR, on the build tree's file system); removed after
#   RUNS       runs of each measurement (5)
set -eu
B=${1:-build}
W=$B/tools/walrus
WORK=${2:-$(mktemp -d "$B/cli-figures.XXXXXX")}
RUNS=${3:-5}
[ -x "$W" ] || { echo "cli_figures: build $W first" >&2; exit 2; }
trap 'rm -rf "$WORK"' EXIT

now() { date +%s.%N; }
# median CMD...: run CMD RUNS times (output to /dev/null), print the
# median wall time in seconds.
median() {
  for _ in $(seq "$RUNS"); do
    t0=$(now)
    sh -c "$1" >/dev/null
    t1=$(now)
    echo "$t1 - $t0" | bc -l
  done | sort -n | awk '{ v[NR] = $1 } END { printf "%.4f\n", v[int((NR + 1) / 2)] }'
}

echo "== building the logs in $WORK"
seq 10000000 | "$W" append "$WORK/small" --sync none >/dev/null
pad=$(head -c 1000 /dev/zero | tr '\0' 'x')
yes "$pad" | head -n 1400000 | "$W" append "$WORK/big" --sync none >/dev/null
bytes=$(cat "$WORK"/big/*.seg | wc -c)
echo "small: 10000000 entries; big: $bytes bytes of segments"
cat "$WORK"/small/* "$WORK"/big/* >/dev/null # warm

d=$(median "'$W' dump --data none '$WORK/small'")
c=$(median "cat '$WORK'/small/*")
v=$(median "'$W' verify -q '$WORK/big'")
cb=$(median "cat '$WORK'/big/*")
echo
printf '%-44s %10s %16s\n' "measurement (median of $RUNS)" "seconds" "rate"
printf '%-44s %10s %16s\n' "walrus dump --data none, 10M entries" "$d" \
  "$(echo "10000000 / $d / 1000000" | bc -l | xargs printf '%.2f M entries/s')"
printf '%-44s %10s %16s\n' "cat small/* (same log)" "$c" \
  "$(echo "$(cat "$WORK"/small/* | wc -c) / $c / 1000000000" | bc -l | xargs printf '%.2f GB/s')"
printf '%-44s %10s %16s\n' "walrus verify, $bytes bytes" "$v" \
  "$(echo "$bytes / $v / 1000000000" | bc -l | xargs printf '%.2f GB/s')"
printf '%-44s %10s %16s\n' "cat big/* (same log)" "$cb" \
  "$(echo "$bytes / $cb / 1000000000" | bc -l | xargs printf '%.2f GB/s')"
printf '%-44s %10s\n' "verify time / cat time" \
  "$(echo "$v / $cb" | bc -l | xargs printf '%.2f')"
