#!/bin/sh
# test_cli.sh: the walrus command against known logs.
#
# Usage: tests/cli/test_cli.sh BUILD_DIR
#
# Runs build/tools/walrus on logs that build/tests/cli_helper writes
# (fixed timestamps, 4 KiB segments), and checks exact text output, JSON
# output with jq, exit codes, and that nothing changes a log it must not.
# Each check prints "ok" or "FAIL" with what differed; the script exits 1
# if any failed.
set -u

B=$(cd "$1" && pwd)
W=$B/tools/walrus
H=$B/tests/cli_helper
T=$(mktemp -d "${TMPDIR:-/tmp}/walrus-cli.XXXXXX")
failed=0
checks=0
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
command -v jq >/dev/null || { echo "test_cli: jq is needed" >&2; exit 1; }

ok() { checks=$((checks + 1)); echo "ok   $1"; }
bad() { checks=$((checks + 1)); failed=$((failed + 1)); echo "FAIL $1"; }

# run RC CMD...: run CMD (stdout to $T/out, stderr to $T/err), check its
# exit status.
run() {
  want=$1
  shift
  "$@" >"$T/out" 2>"$T/err"
  got=$?
  if [ "$got" -eq "$want" ]; then
    ok "exit $want: $*"
  else
    bad "exit $got, not $want: $*"
    sed 's/^/     stderr: /' "$T/err"
  fi
}
# same NAME FILE: $T/out (or FILE) equals the text on stdin.
same() {
  cat >"$T/want"
  if cmp -s "$T/want" "${2:-$T/out}"; then
    ok "$1"
  else
    bad "$1"
    diff "$T/want" "${2:-$T/out}" | sed 's/^/     /'
  fi
}
# has NAME PATTERN FILE: FILE (default $T/err) has a line matching.
has() {
  if grep -q -- "$2" "${3:-$T/err}"; then ok "$1"; else
    bad "$1: no '$2' in:"
    sed 's/^/     /' "${3:-$T/err}"
  fi
}
# jqt NAME FILTER: jq -e FILTER holds on $T/out.
jqt() {
  if jq -e "$2" "$T/out" >/dev/null 2>&1; then ok "$1"; else
    bad "$1: jq '$2' on:"
    head -c 600 "$T/out" | sed 's/^/     /'
  fi
}
# jqs NAME FILTER: the same on $T/out's JSON lines as one array.
jqs() {
  if jq -e -s "$2" "$T/out" >/dev/null 2>&1; then ok "$1"; else
    bad "$1: jq -s '$2' on:"
    head -c 600 "$T/out" | sed 's/^/     /'
  fi
}
# sums DIR: a checksum of every file under DIR, by name.
sums() { (cd "$1" && find . -type f | LC_ALL=C sort | xargs sha256sum); }
# flip FILE OFFSET: invert one byte.
flip() {
  b=$(od -An -tu1 -j"$2" -N1 "$1" | tr -d ' ')
  printf "$(printf '\\%03o' $((b ^ 255)))" |
    dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
S1=00000000000000000001.seg
S83=00000000000000000083.seg
S157=00000000000000000157.seg
S229=00000000000000000229.seg
mklog() { "$H" make "$1" 300 4096 || { echo "cli_helper failed" >&2; exit 1; }; }

# ---- stat -----------------------------------------------------------------
L=$T/log
mklog "$L"
before=$(sums "$L")
run 0 "$W" stat "$L"
sed -e "s|$L|LOG|" -e 's/^log id .*/log id       ID/' "$T/out" >"$T/out2"
same "stat: text" "$T/out2" <<'EOF'
log          LOG
log id       ID
format       1
entries      1..300 (300)
durable      300 (the writer's DURABLE)
writer       no
tail         clean
segments     4, 17544 bytes
  file                              first         last    entries        bytes  state
  00000000000000000001.seg              1           82         82         4496  sealed
  00000000000000000083.seg             83          156         74         4456  sealed
  00000000000000000157.seg            157          228         72         4456  sealed
  00000000000000000229.seg            229          300         72         4136  tail
EOF
run 0 "$W" stat --json "$L"
jqt "stat: json range" '.first_index == 1 and .last_index == 300 and .next_index == 301 and .durable_index == 300'
jqt "stat: json segments" '[.segments[].state] == ["sealed","sealed","sealed","tail"] and .segments[1].first_index == 83 and .segments[1].last_index == 156 and .total_bytes == 17544 and all(.segments[]; .version == 1)'
jqt "stat: json lock and tail" '.locked == "no" and .tail == "clean" and .damaged == false and (.log_id | test("^[0-9a-f]{16}$"))'

# ---- dump -----------------------------------------------------------------
run 0 "$W" dump "$L" --from 3 -n 3
same "dump: text" <<'EOF'
3 term=1 type=0 time=2023-11-14T22:13:20.003000000Z tx=- len=7 entry-3
4 term=1 type=1 time=2023-11-14T22:13:20.004000000Z tx=- len=7 entry-4
5 term=1 type=2 time=2023-11-14T22:13:20.005000000Z tx=tx_demo len=7 entry-5
EOF
run 0 "$W" dump "$L" --from 298 --to 1000 --data hex
same "dump: --to past the end is clamped; --data hex" <<'EOF'
298 term=30 type=1 time=2023-11-14T22:13:20.298000000Z tx=- len=9 656e7472792d323938
299 term=30 type=2 time=2023-11-14T22:13:20.299000000Z tx=tx_demo len=9 656e7472792d323939
300 term=31 type=0 time=2023-11-14T22:13:20.300000000Z tx=- len=9 656e7472792d333030
EOF
run 0 "$W" dump "$L" --from 10 --to 10 --data base64
same "dump: --data base64" <<'EOF'
10 term=2 type=1 time=2023-11-14T22:13:20.010000000Z tx=- len=8 ZW50cnktMTA=
EOF
run 0 "$W" dump "$L" --data none --to 2
same "dump: --data none" <<'EOF'
1 term=1 type=1 time=2023-11-14T22:13:20.001000000Z tx=- len=7
2 term=1 type=2 time=2023-11-14T22:13:20.002000000Z tx=- len=7
EOF
run 0 "$W" dump "$L" --json
jqs "dump: json lines" 'length == 300 and .[0].index == 1 and .[299].index == 300 and .[0].data == "entry-1" and .[0].encoding == "utf8" and .[4].tx_id == "tx_demo" and .[0].tx_id == null and .[0].time == "2023-11-14T22:13:20.001000000Z"'
run 0 "$W" dump "$L" --tx tx_demo --json
jqs "dump: --tx" 'length == 43 and all(.[]; .tx_id == "tx_demo") and .[1].index == 12'
run 0 "$W" dump "$L" --type 2 --from 100 --json
jqs "dump: --type and --from" 'length == 67 and all(.[]; .type == 2) and .[0].index == 101'

# ---- verify ---------------------------------------------------------------
run 0 "$W" verify "$L"
same "verify: clean" <<EOF
verify: $L: 4 segments, 300 entries, 17544 bytes: clean
EOF
run 0 "$W" verify --json "$L"
jqt "verify: json clean" '.clean == true and .torn_tail == false and .entries == 300 and .findings == []'
run 0 "$W" verify -q "$L"
same "verify: -q prints nothing" </dev/null
[ "$before" = "$(sums "$L")" ] && ok "stat, dump, verify change nothing" ||
  bad "stat, dump, verify changed the log"

# ---- a compressed log -------------------------------------------------------
# The same 300 entries in zstd-compressed batches of 10: dump prints the
# original bytes, verify finds it clean, and a flipped frame byte is named.
Z=$T/zlog
"$H" make-zstd "$Z" 300 4096 2>"$T/err"
zrc=$?
if [ "$zrc" -eq 3 ]; then
  echo "skip compressed log: this build has no zstd"
elif [ "$zrc" -ne 0 ]; then
  bad "cli_helper make-zstd failed"; sed 's/^/     /' "$T/err"
else
  "$W" dump "$L" --data hex >"$T/plain.dump"
  run 0 "$W" dump "$Z" --data hex
  cmp -s "$T/plain.dump" "$T/out" && ok "dump: a compressed log's original bytes" ||
    { bad "dump of the compressed log differs"; diff "$T/plain.dump" "$T/out" | head | sed 's/^/     /'; }
  run 0 "$W" dump "$Z" --json
  jqs "dump: compressed, json" 'length == 300 and .[0].data == "entry-1" and .[299].data == "entry-300" and .[4].tx_id == "tx_demo"'
  run 0 "$W" stat --json "$Z"
  jqt "stat: the compressed log's segments are version 2" 'all(.segments[]; .version == 2)'
  zbytes=$(jq .total_bytes "$T/out")
  [ "$zbytes" -lt 17544 ] && ok "the compressed log is smaller ($zbytes bytes)" ||
    bad "the compressed log takes $zbytes bytes, the plain one 17544"
  run 0 "$W" verify --json "$Z"
  jqt "verify: compressed log clean" '.clean == true and .entries == 300 and .findings == []'
  # Walk the first segment's records (docs/FORMAT.md: body_len at +4,
  # flags at +34) to the first compressed one (flag 0x40), and flip a
  # byte of its frame.
  zfirst=$(ls "$Z" | grep '\.seg$' | head -1)
  zoff=64
  while :; do
    blen=$(od -An -tu4 -j$((zoff + 4)) -N4 "$Z/$zfirst" | tr -d ' ')
    flags=$(od -An -tu1 -j$((zoff + 34)) -N1 "$Z/$zfirst" | tr -d ' ')
    [ -n "$blen" ] || break
    [ $((flags & 64)) -ne 0 ] && break
    zoff=$((zoff + 40 + (blen + 7) / 8 * 8))
  done
  if [ -z "$blen" ]; then
    bad "no compressed record in $zfirst"
  else
    flip "$Z/$zfirst" $((zoff + 40 + 8 + blen / 2))
    run 1 "$W" verify --json "$Z"
    jqt "verify: a flipped frame byte, named" ".clean == false and .findings[0].kind == \"damage\" and .findings[0].file == \"$zfirst\" and .findings[0].offset == $zoff"
  fi
fi

for c in sealed tail trailer torn; do mklog "$T/$c"; done
flip "$T/sealed/$S83" 200    # inside the record at 160 of a sealed segment
flip "$T/tail/$S229" 200     # inside the record at 176 of the tail
flip "$T/trailer/$S1" 4480   # inside the trailer (4464..4495) of segment 1
truncate -s -5 "$T/torn/$S229"
run 1 "$W" verify "$T/sealed"
same "verify: flipped byte in a sealed segment" <<EOF
damage: $S83 at offset 160: checksum mismatch
verify: $T/sealed: 4 segments, 228 entries, 17544 bytes: DAMAGED
EOF
run 1 "$W" verify "$T/tail"
same "verify: flipped byte in the tail" <<EOF
damage: $S229 at offset 176: checksum mismatch, but valid record 232 at offset 232 follows the damage
verify: $T/tail: 4 segments, 230 entries, 17544 bytes: DAMAGED
EOF
run 1 "$W" verify "$T/trailer"
same "verify: flipped byte in a trailer" <<EOF
damage: $S1 at offset 4464: not the last segment but not sealed: no valid trailer
verify: $T/trailer: 4 segments, 300 entries, 17544 bytes: DAMAGED
EOF
run 0 "$W" verify "$T/torn"
same "verify: a torn tail is torn, not damage" <<EOF
torn: $S229 at offset 4096: torn tail (partial record header): an open cuts 35 bytes from offset 4096
verify: $T/torn: 4 segments, 300 entries, 17539 bytes: clean (torn tail: the next open cuts it)
EOF
run 1 "$W" verify --json "$T/sealed"
jqt "verify: json damage" '.clean == false and .damage == 1 and .findings[0].kind == "damage" and .findings[0].file == "'$S83'" and .findings[0].offset == 160'
run 0 "$W" verify --json "$T/torn"
jqt "verify: json torn" '.clean == true and .torn_tail == true and .findings[0].kind == "torn" and .findings[0].offset == 4096'
run 0 "$W" stat --json "$T/torn"
jqt "stat: torn tail and the cut" '.tail == "torn" and .tail_cut_offset == 4096 and .tail_cut_bytes == 35 and .damaged == false'
run 0 "$W" stat --json "$T/tail"
jqt "stat: damaged tail" '.tail == "damaged" and .damaged == true and (.problem | test("offset 176"))'

# ---- repair ---------------------------------------------------------------
for c in sealed tail trailer torn; do
  cp -a "$T/$c" "$T/$c.orig"
  s=$(sums "$T/$c")
  run 0 "$W" repair --dry-run "$T/$c"
  [ "$s" = "$(sums "$T/$c")" ] && ok "repair --dry-run: $c byte-identical" ||
    bad "repair --dry-run changed $c"
done
run 0 "$W" repair --dry-run "$T/sealed"
same "repair --dry-run: the plan" <<EOF
would cut $S83 at offset 160: 4296 bytes (72 entries) into $S83.salvage
would move $S157 (4456 bytes, 72 entries) to salvage/$S157.<ns>
would move $S229 (4136 bytes, 72 entries) to salvage/$S229.<ns>
dry run: the log would lose 216 entries and end at index 84; nothing changed
EOF
run 0 "$W" repair "$T/sealed"
has "repair: says what it cut" "salvage: moved 4296 bytes of $S83 from offset 160 to $S83.salvage" "$T/out"
has "repair: says what it moved" "salvage: moved $S229 to salvage/$S229\." "$T/out"
has "repair: the result" "repair: done; the log holds 1..84" "$T/out"
cat "$T/sealed/$S83" "$T/sealed/$S83.salvage" | cmp -s - "$T/sealed.orig/$S83" &&
  ok "repair: cut segment + side file = the original" ||
  bad "repair: cut segment + side file differ from the original"
for s in $S157 $S229; do
  cmp -s "$T/sealed/salvage/$s".* "$T/sealed.orig/$s" &&
    ok "repair: moved $s kept whole" || bad "repair: moved $s differs"
done
cmp -s "$T/sealed/$S1" "$T/sealed.orig/$S1" && ok "repair: $S1 untouched" ||
  bad "repair: $S1 changed"
run 0 "$W" verify "$T/sealed"
has "repair: the repaired log verifies" "2 segments, 84 entries.*clean" "$T/out"
for c in tail trailer torn; do
  run 0 "$W" repair "$T/$c"
  seg=$S229
  [ "$c" = trailer ] && seg=$S1
  cat "$T/$c/$seg" "$T/$c/$seg.salvage" | cmp -s - "$T/$c.orig/$seg" &&
    ok "repair $c: kept every removed byte" || bad "repair $c: bytes lost"
  run 0 "$W" verify -q "$T/$c"
done
s=$(sums "$L")
run 0 "$W" repair "$L"
same "repair: a healthy log" <<EOF
repair: $L is healthy: nothing to do, nothing changed
EOF
[ "$s" = "$(sums "$L")" ] && ok "repair: healthy log byte-identical" ||
  bad "repair changed a healthy log"

# A writer in another process holds the lock.
mkfifo "$T/hold.in"
"$H" hold "$T/sealed.orig" <"$T/hold.in" >"$T/hold.out" &
pids="$pids $!"
exec 3>"$T/hold.in"
i=0
while [ "$(cat "$T/hold.out")" != locked ] && [ $i -lt 50 ]; do
  sleep 0.1
  i=$((i + 1))
done
s=$(sums "$T/sealed.orig")
run 3 "$W" repair "$T/sealed.orig"
has "repair: refused while locked" "a writer holds the lock"
run 0 "$W" stat --json "$T/sealed.orig"
jqt "stat: the writer's lock is seen" '.locked == "yes"'
run 1 "$W" verify -q "$T/sealed.orig"
[ "$s" = "$(sums "$T/sealed.orig")" ] && ok "locked log untouched" ||
  bad "locked log changed"
run 3 "$W" append "$T/sealed.orig" </dev/null
has "append: locked log refused" "WALRUS_ELOCKED"
exec 3>&-
wait

# ---- tail -----------------------------------------------------------------
run 0 "$W" tail -n 2 "$L"
same "tail -n 2" <<'EOF'
299 term=30 type=2 time=2023-11-14T22:13:20.299000000Z tx=tx_demo len=9 entry-299
300 term=31 type=0 time=2023-11-14T22:13:20.300000000Z tx=- len=9 entry-300
EOF
run 0 "$W" tail -n 1 --json "$L"
jqt "tail --json" '.index == 300 and .data == "entry-300"'

# tail -f in one process, a writer in another.
F=$T/follow
mkdir "$F"
mkfifo "$T/w.in"
"$H" write "$F/log" <"$T/w.in" >"$T/w.out" &
wpid=$!
pids="$pids $wpid"
exec 4>"$T/w.in"
echo first >&4
i=0
while ! grep -q . "$T/w.out" 2>/dev/null && [ $i -lt 50 ]; do
  sleep 0.1
  i=$((i + 1))
done
"$W" tail -f "$F/log" >"$T/f.out" 2>"$T/f.err" &
fpid=$!
pids="$pids $fpid"
# seen NAME TEXT: the follower printed TEXT within 1 s.
seen() {
  i=0
  while ! grep -q -- "$2" "$T/f.out" && [ $i -lt 10 ]; do
    sleep 0.1
    i=$((i + 1))
  done
  grep -q -- "$2" "$T/f.out" && ok "tail -f: $1 within 1 s" ||
    { bad "tail -f: $1 not seen in 1 s"; cat "$T/f.out" "$T/f.err" | sed 's/^/     /'; }
}
seen "the existing entry" "live-1$"
echo two >&4
seen "an entry appended" "live-2$"
echo rotate >&4
seen "an entry after a rotation" "live-3$"
echo "front 8" >&4
echo four >&4
seen "an entry after truncate_front" "live-4$"
kill -INT $fpid
i=0
while kill -0 $fpid 2>/dev/null && [ $i -lt 20 ]; do sleep 0.1; i=$((i + 1)); done
wait $fpid
rc=$?
[ $rc -eq 0 ] && ok "tail -f: SIGINT exits 0" || bad "tail -f: SIGINT exit $rc"
exec 4>&-
wait $wpid
run 0 "$W" stat --json "$F/log"
jqt "tail -f: the writer rotated and truncated" '.segments[0].first_index > 1 and .first_index == 8'

# ---- append ---------------------------------------------------------------
A=$T/app
printf 'a\000b\n\377\376 not utf-8\nplain\n' | "$W" append "$A" --term 7 --type 3 >"$T/out" 2>"$T/err"
[ $? -eq 0 ] && ok "append: binary lines" || bad "append: binary lines"
printf '1\n2\n3\n' | same "append: indexes once durable"
run 0 "$W" dump "$A" --json
jqs "append: NUL and invalid UTF-8 as base64" '.[0].encoding == "base64" and .[0].data == "YQBi" and .[1].encoding == "base64" and (.[1].data | @base64d | length) > 0 and .[2].encoding == "utf8" and .[2].data == "plain" and all(.[]; .term == 7 and .type == 3)'
"$W" dump "$A" --json | "$W" append "$T/app2" --json >/dev/null 2>"$T/err" &&
  ok "append --json: dump --json as input" || bad "append --json failed"
"$W" dump "$A" --data hex | sed 's/ time=[^ ]*//' >"$T/a1"
"$W" dump "$T/app2" --data hex | sed 's/ time=[^ ]*//' >"$T/a2"
cmp -s "$T/a1" "$T/a2" && ok "append | dump: binary round trip through --json" ||
  { bad "append | dump round trip differs"; diff "$T/a1" "$T/a2" | sed 's/^/     /'; }
# 64-bit numbers are printed exactly (jq reads them as doubles: grep).
B=$T/big
printf 'big\n' | "$W" append "$B" --term 18446744073709551615 >/dev/null 2>"$T/err"
run 0 "$W" dump "$B" --json
has "dump --json: a term above 2^53 keeps every digit" '"term":18446744073709551615,' "$T/out"
printf '{"data":"q","term":9007199254740993}\n' | "$W" append "$B" --json >"$T/out" 2>"$T/err"
[ $? -eq 2 ] && ok "append --json: a term above 2^53 is refused (exit 2)" ||
  bad "append --json: a term above 2^53 was accepted"
# A tx id that is not UTF-8 travels as base64 both ways.
X=$T/txid
printf '{"data":"q","tx_id":"/3g=","tx_id_encoding":"base64"}\n' | "$W" append "$X" --json >/dev/null 2>"$T/err"
run 0 "$W" dump "$X" --json
jqt "dump --json: a tx id that is not UTF-8 is base64" '.tx_id == "/3g=" and .tx_id_encoding == "base64"'
printf 'x\ny\nz\n' | "$W" append "$A" --batch --sync none >"$T/out" 2>"$T/err"
printf '4\n5\n6\n' | same "append --batch --sync none"
printf '{"data":"q","term":2}\n' | "$W" append "$A" --json --sync interval >"$T/out" 2>&1
printf '7\n' | same "append --json --sync interval"
printf '{"data": 5}\n' | "$W" append "$A" --json >"$T/out" 2>"$T/err"
[ $? -eq 2 ] && ok "append --json: a bad line is a usage error" ||
  bad "append --json: bad line accepted"
has "append --json: names the line" "line 1: \"data\" is not a string"

# ---- truncate -------------------------------------------------------------
R=$T/trunc
mklog "$R"
run 0 "$W" truncate "$R" --front 100 --yes
same "truncate --front" <<'EOF'
truncate: removed 1..99 (99 entries); the log holds 100..300
EOF
run 0 "$W" truncate "$R" --back 250
same "truncate --back (no terminal: no question)" <<'EOF'
truncate: removed 251..300 (50 entries); the log holds 100..250
EOF
s=$(sums "$R")
run 1 "$W" truncate "$R" --back 400
has "truncate: index out of range" "out of range for --back: the log holds 100..250"
run 1 "$W" truncate "$R" --front 5
[ "$s" = "$(sums "$R")" ] && ok "truncate: refused ones change nothing" ||
  bad "truncate: a refused one changed the log"
run 0 "$W" truncate "$R" --reset 1000
same "truncate --reset" <<'EOF'
truncate: removed 100..250 (151 entries); the log is empty, next index 1000
EOF
run 2 "$W" truncate "$R"
run 2 "$W" truncate "$R" --front 1 --back 2

# ---- bad input ------------------------------------------------------------
s=$(sums "$L")
run 2 "$W"
run 2 "$W" frobnicate "$L"
has "unknown command named" "unknown command 'frobnicate'"
run 2 "$W" dump --bogus "$L"
has "unknown option named" "dump: unknown option '--bogus'"
run 2 "$W" dump -Z "$L"
run 2 "$W" dump "$L" --from
has "missing value named" "option '--from' needs a value"
for c in stat dump verify repair tail append truncate; do
  run 2 "$W" "$c"
  has "$c: missing DIR" "missing DIR"
done
run 2 "$W" stat "$L" "$L"
touch "$T/afile"
for c in stat dump verify repair tail; do
  run 3 "$W" "$c" "$T/afile"
  has "$c: a file instead of a directory" "not a directory"
done
run 3 "$W" stat "$T/missing"
has "missing directory named" "$T/missing: No such file or directory"
mkdir "$T/empty"
for c in stat dump verify repair tail; do
  run 3 "$W" "$c" "$T/empty"
  has "$c: an empty directory" "holds no walrus log"
done
[ -z "$(ls -A "$T/empty")" ] && ok "empty directory left empty" ||
  bad "empty directory changed: $(ls -A "$T/empty")"
G=$T/garbage
mkdir "$G"
head -c 5000 /dev/urandom >"$G/$S1"
head -c 56 /dev/urandom >"$G/META"
run 1 "$W" verify "$G"
has "garbage: META damage named" "damage: META at offset 0" "$T/out"
run 1 "$W" dump "$G"
run 0 "$W" stat "$G"
has "garbage: stat shows the damage" "damage       META" "$T/out"
run 1 "$W" repair "$G"
has "garbage: repair needs a sound META" "salvage needs a sound META"
rm "$G/META"
run 1 "$W" verify "$G"
has "segments without META" "META at offset 0: missing" "$T/out"
run 1 "$W" dump "$L" --from 301
has "from past the end" "index 301 is out of range: the log holds 1..300"
run 1 "$W" dump "$L" --from 0
run 2 "$W" dump "$L" --from 9 --to 3
has "from above to" "--from 9 is above --to 3"
run 2 "$W" dump "$L" --from abc
has "non-numeric" "invalid --from index 'abc'"
run 2 "$W" dump "$L" -n -1
run 2 "$W" dump "$L" --from 99999999999999999999999
run 2 "$W" dump "$L" --type 70000
run 2 "$W" dump "$L" --data rot13
run 2 "$W" tail -n x "$L"
run 2 "$W" append "$L" --sync sometimes
"$W" dump "$L" >&- 2>"$T/err"
[ $? -eq 1 ] && ok "closed stdout: exit 1" || bad "closed stdout: not exit 1"
has "closed stdout" "cannot write to standard output"
"$W" dump "$L" | head -n 1 >/dev/null
[ $? -eq 0 ] && ok "dump into a closed pipe" || bad "dump into a closed pipe"
[ "$s" = "$(sums "$L")" ] && ok "bad input left the log unchanged" ||
  bad "bad input changed the log"

# ---- help and version -----------------------------------------------------
run 0 "$W" --version
has "--version" "^walrus 0\.1\.0 (library 0\.1\.0, format 1)$" "$T/out"
run 0 "$W" help
has "help lists probe-fsync" "probe-fsync" "$T/out"
for c in stat dump verify repair tail append truncate; do
  run 0 "$W" help "$c"
  has "help $c" "^usage: walrus $c" "$T/out"
  run 0 "$W" "$c" --help
done
run 2 "$W" help nothing

echo "test_cli: $checks checks, $failed failed"
[ $failed -eq 0 ]
