#!/bin/sh
# fs-matrix.sh: runs walrus's contract tests on other Linux file systems.
#
# Usage: scripts/fs-matrix.sh BUILD_DIR [FS...]
#        FS_MATRIX=full scripts/fs-matrix.sh ...   (every contract test)
#        FS_TESTS=REGEX scripts/fs-matrix.sh ...   (the tests named)
#
# For each file system (default: xfs btrfs tmpfs) it makes a loop-mounted
# image (tmpfs: a tmpfs mount) under BUILD_DIR/fs-matrix/, runs the
# contract tests of BUILD_DIR with TMPDIR on it, so that every log the
# tests make lives there, and removes the mount and the image.  The
# contract tests are those whose behaviour the file system can change:
# the API, recovery, the SIGKILL runners, the bank, transactions,
# following, mapped writes, group commit, deadlines and the walrus
# command; with FS_MATRIX=full also hostile directories, views, fail-stop
# and the transaction kill runner.
#
# Each file system's ctest output goes to BUILD_DIR/ctest-fs-<fs>.log, and
# one line per file system says what happened:
#
#   fs xfs: 100% tests passed, 0 tests failed out of 14
#   fs btrfs: skipped: mkfs.btrfs is not installed
#
# A file system that cannot be made or mounted (not root, no loop device,
# no mkfs) is reported as skipped, with the reason, never as passed.  The
# exit status is non-zero only when a test failed.
set -u

build=${1:?usage: $0 BUILD_DIR [FS...]}
shift
[ $# -gt 0 ] || set -- xfs btrfs tmpfs
build=$(cd "$build" && pwd) || exit 2
work=$build/fs-matrix
# The default set keeps `make test` short (btrfs syncs slowly on a loop
# image); FS_MATRIX=full (make soak) adds the slower contract tests.
tests='^(test_api|test_recovery|test_kill|test_bank|test_tx|test_following|'
tests=$tests'test_mapped|test_group_commit|test_deadline|test_cli)$'
if [ "${FS_MATRIX:-}" = full ]; then
  tests='^(test_api|test_recovery|test_kill|test_tx_kill|test_bank|test_tx|'
  tests=$tests'test_following|test_mapped|test_group_commit|test_hostile|'
  tests=$tests'test_deadline|test_views|test_failstop|test_cli)$'
fi
tests=${FS_TESTS:-$tests}
status=0

# skip FS REASON: report and go on.
skip() { echo "fs $1: skipped: $2"; }

# Make and mount FS at $mnt; 0 when mounted.
mount_fs() {
  fs=$1
  mkdir -p "$mnt" || return 1
  if [ "$fs" = tmpfs ]; then
    mount -t tmpfs -o size=2g tmpfs "$mnt" 2>"$work/err" && return 0
    reason=$(cat "$work/err"); return 1
  fi
  if ! command -v "mkfs.$fs" >/dev/null 2>&1; then
    reason="mkfs.$fs is not installed"; return 1
  fi
  img=$work/$fs.img
  rm -f "$img"
  # btrfs needs at least about 110 MiB; 2 GiB, sparse, leaves room for the
  # prefilled 64 MiB segments of tests that keep the default size.
  truncate -s 2G "$img" || { reason="cannot create $img"; return 1; }
  if ! "mkfs.$fs" -q "$img" >"$work/err" 2>&1 &&
     ! "mkfs.$fs" "$img" >"$work/err" 2>&1; then
    reason="mkfs.$fs failed: $(tail -n 1 "$work/err")"; return 1
  fi
  mount -o loop "$img" "$mnt" 2>"$work/err" && return 0
  reason="mount failed: $(tail -n 1 "$work/err")"
  return 1
}

if [ "$(id -u)" -ne 0 ]; then
  for fs in "$@"; do skip "$fs" "needs root to mount"; done
  exit 0
fi
mkdir -p "$work" || exit 2

for fs in "$@"; do
  mnt=$work/$fs
  log=$build/ctest-fs-$fs.log
  rm -f "$log"
  reason=""
  if ! mount_fs "$fs"; then
    skip "$fs" "${reason:-cannot mount}"
    rm -f "$work/$fs.img"
    continue
  fi
  mkdir -p "$mnt/tmp"
  (cd "$build" && TMPDIR=$mnt/tmp ctest --output-on-failure --no-tests=error \
     -j2 -R "$tests") >"$log" 2>&1
  rc=$?
  line=$(grep -E '^[0-9]+% tests passed' "$log" | tail -n 1)
  echo "fs $fs: ${line:-no test results (see $log)}"
  [ $rc -eq 0 ] || status=1
  umount "$mnt" || umount -l "$mnt"
  rm -f "$work/$fs.img"
  rmdir "$mnt" 2>/dev/null
done
exit $status
