#!/bin/sh
# probe_figures.sh: the figures of docs/BENCHMARKS.md "Durable writes on
# this machine": `walrus probe-fsync` beside fio and dd doing the same
# writes, and `walrus bench` with 1, 4 and 16 threads under sync always,
# all in one run, RUNS times, alternating, with the median of each figure.
#
#   bench/probe_figures.sh [DIR] [RUNS] [SECONDS] [SIZE]
#
#   DIR      where the files go (default /work): the file system measured
#   RUNS     rounds (default 5); each figure is the median of the rounds
#   SECONDS  per measurement (default 2)
#   SIZE     bytes per write (default 4096)
#
# WALRUS (default build/tools/walrus) names the walrus program.  fio and dd
# rows are skipped when the program is missing.  Every file is made in a
# directory walrus-figures-XXXXXX inside DIR and removed at the end.
#
# The pairs, each the same system calls on the same kind of file:
#   probe "write + fdatasync" (growing)    fio rw=write, new file, fdatasync=1
#   probe "pwrite + fdatasync" (prefilled) fio rw=write, laid out, fdatasync=1
#   probe "pwrite, O_DSYNC" (prefilled)    fio rw=write, laid out, sync=dsync;
#                                          dd oflag=dsync conv=notrunc
#   probe "write + fsync" (growing)        fio rw=write, new file, fsync=1
set -eu

DIR=${1:-/work}
RUNS=${2:-5}
SECS=${3:-2}
SIZE=${4:-4096}
WALRUS=${WALRUS:-build/tools/walrus}
MSECS=$(awk -v s="$SECS" 'BEGIN { printf "%d", s * 1000 }') # fio's unit

[ -x "$WALRUS" ] || { echo "probe_figures: $WALRUS is not built" >&2; exit 3; }
TMP=$(mktemp -d "$DIR/walrus-figures-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM HUP
RES="$TMP/results.tsv"
: > "$RES"
have() { command -v "$1" > /dev/null 2>&1; }

# fio_iops NAME ARGS...: one fio job writing $TMP/fio.dat from its start,
# one write at a time; prints write IOPS.  A growing file is one fio does
# not lay out (--fallocate=none on a new file, --size only a bound); a
# prefilled one it writes in full before the timed phase (--overwrite=1).
fio_iops() {
  name=$1
  shift
  rm -f "$TMP/fio.dat"
  fio --name="$name" --filename="$TMP/fio.dat" --bs="$SIZE" \
      --ioengine=sync --rw=write --time_based --runtime="${MSECS}ms" \
      --output-format=json "$@" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"][0]["write"]["iops"])'
}

# dd_rate COUNT: COUNT O_DSYNC writes over a prefilled file; prints ops/s.
dd_rate() {
  dd if=/dev/zero of="$TMP/dd.dat" bs="$SIZE" count=$((16777216 / SIZE)) \
     conv=fsync status=none
  dd if=/dev/zero of="$TMP/dd.dat" bs="$SIZE" count="$1" oflag=dsync \
     conv=notrunc 2>&1 |
    awk -v n="$1" '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") print n / $(i - 1) }'
}

# probe_row LABEL: ops/s, p50 and p99 of a row of the last probe.
probe_row() {
  awk -v l="$1" 'index($0, l) == 1 { s = substr($0, length(l) + 1);
                   split(s, f, " "); print f[2], f[3], f[4] }' "$TMP/probe.out"
}

for run in $(seq 1 "$RUNS"); do
  echo "round $run of $RUNS" >&2
  "$WALRUS" probe-fsync "$TMP" --seconds "$SECS" --size "$SIZE" > "$TMP/probe.out"
  [ "$run" = 1 ] && sed -n '2,4p' "$TMP/probe.out" > "$TMP/header"
  for row in "write + fdatasync" "pwrite + fdatasync" "pwrite, O_DSYNC" \
             "write + fsync" "walrus append, 1 thread" \
             "walrus append, 4 threads" "walrus append, 16 threads"; do
    probe_row "$row" | awk -v r="probe $row" \
      '{ printf "%s\tops/s\t%s\n%s\tp50 us\t%s\n%s\tp99 us\t%s\n", r, $1, r, $2, r, $3 }' >> "$RES"
  done
  if have fio && have python3; then
    printf 'fio write + fdatasync, growing\tops/s\t%s\n' \
      "$(fio_iops grow --size=4g --fallocate=none --fdatasync=1)" >> "$RES"
    printf 'fio pwrite + fdatasync, prefilled\tops/s\t%s\n' \
      "$(fio_iops pre --size=16m --overwrite=1 --fdatasync=1)" >> "$RES"
    printf 'fio O_DSYNC, prefilled\tops/s\t%s\n' \
      "$(fio_iops dsync --size=16m --overwrite=1 --sync=dsync)" >> "$RES"
    printf 'fio write + fsync, growing\tops/s\t%s\n' \
      "$(fio_iops fsync --size=4g --fallocate=none --fsync=1)" >> "$RES"
    rm -f "$TMP/fio.dat"
  fi
  if have dd; then
    n=$(probe_row "pwrite, O_DSYNC" | awk -v s="$SECS" '{ printf "%d", $1 * s + 1 }')
    printf 'dd oflag=dsync, prefilled\tops/s\t%s\n' "$(dd_rate "$n")" >> "$RES"
    rm -f "$TMP/dd.dat"
  fi
  for t in 1 4 16; do
    "$WALRUS" bench "$TMP/bench-$t" --threads "$t" --seconds "$SECS" \
      --size "$SIZE" --sync always > "$TMP/bench.out"
    awk -v r="bench $t threads" '
      /^ops\/s/ { printf "%s\tops/s\t%s\n", r, $2 }
      /^latency us/ { printf "%s\tp50 us\t%s\n%s\tp99 us\t%s\n%s\tp99.9 us\t%s\n",
                      r, $4, r, $6, r, $8 }
      /^fsyncs/ { sub(/\(/, "", $3); printf "%s\tentries/fsync\t%s\n", r, $3 }' \
      "$TMP/bench.out" >> "$RES"
    rm -rf "$TMP/bench-$t"
  done
done

echo "walrus probe_figures: $RUNS rounds of $SECS s per measurement, $SIZE-byte writes"
cat "$TMP/header"
echo
# Medians, in the order the figures first appeared; then ratios, each
# taken within one round (the two measurements seconds apart) and the
# median of the rounds' ratios, which cancels much of the machine's drift.
awk -F '\t' '
  function median(m) {
    for (a = 2; a <= m; a++) for (b = a; b > 1 && s[b-1] > s[b]; b--) {
      t = s[b]; s[b] = s[b-1]; s[b-1] = t }
    return m % 2 ? s[(m + 1) / 2] : (s[m / 2] + s[m / 2 + 1]) / 2
  }
  function r(x, y,   m, i, kx, ky) {
    kx = x "\tops/s"; ky = y "\tops/s"; m = 0
    if (!(kx in n) || !(ky in n)) return
    for (i = 1; i <= n[kx] && i <= n[ky]; i++)
      if (v[ky, i] > 0) s[++m] = v[kx, i] / v[ky, i]
    if (m == 0) return
    med = median(m)
    printf "  %-34s / %-34s %5.2fx  (%.2f..%.2f)\n", x, y, med, s[1], s[m]
  }
  { k = $1 "\t" $2; if (!(k in n)) order[++keys] = k; v[k, ++n[k]] = $3 + 0 }
  END {
    for (i = 1; i <= keys; i++) {
      k = order[i]; m = n[k]
      for (j = 1; j <= m; j++) s[j] = v[k, j]
      med = median(m)
      split(k, kk, "\t")
      printf "%-40s %-14s %12.1f   (%s..%s)\n", kk[1], kk[2], med, s[1], s[m]
    }
    print ""
    print "ratios: median of the rounds (lowest..highest round)"
    r("probe write + fdatasync", "fio write + fdatasync, growing")
    r("probe pwrite + fdatasync", "fio pwrite + fdatasync, prefilled")
    r("probe pwrite, O_DSYNC", "fio O_DSYNC, prefilled")
    r("probe pwrite, O_DSYNC", "dd oflag=dsync, prefilled")
    r("probe write + fsync", "fio write + fsync, growing")
    r("probe pwrite + fdatasync", "probe write + fdatasync")
    r("probe walrus append, 1 thread", "probe pwrite + fdatasync")
    r("probe walrus append, 1 thread", "fio pwrite + fdatasync, prefilled")
    r("probe walrus append, 4 threads", "probe walrus append, 1 thread")
    r("probe walrus append, 16 threads", "probe walrus append, 1 thread")
    r("bench 1 threads", "probe walrus append, 1 thread")
    r("bench 4 threads", "bench 1 threads")
    r("bench 16 threads", "bench 1 threads")
  }' "$RES"
