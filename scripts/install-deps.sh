#!/bin/sh
# install-deps.sh: installs the Debian packages walrus needs, when missing.
#
# Usage: scripts/install-deps.sh [GROUP...]
#
#   build   compiler, build tools and libzstd-dev: enough to build the
#           library (with compression), the examples, the benchmarks and
#           the walrus command with its man page (cJSON, scdoc) (the
#           default group)
#   test    build, plus the test framework (Criterion), jq for the
#           walrus command's tests, xfsprogs and btrfs-progs for the
#           file-system stage, and raft with libuv (libwalrus-raft and its
#           tests)
#   raft    build, plus raft 0.15 and libuv: libwalrus-raft
#   bench   build, plus the peers the benchmarks compare against
#   all     every group
#
# A package is installed only when dpkg says it is not; when everything is
# there this script touches nothing and needs no network.  It runs apt-get
# as root, or through sudo when not root.  Debian 12 (bookworm) is the
# reference; on a system without dpkg it only says what it would need.
set -eu

# The one place the package lists live.
PKGS_BUILD="cmake make gcc libc6-dev pkg-config libzstd-dev libcjson-dev scdoc"
PKGS_TEST="libcriterion-dev jq xfsprogs btrfs-progs"
# libwalrus-raft: canonical's raft (0.15 on Debian 12) and libuv.
PKGS_RAFT="libraft-dev libuv1-dev"
# Peers for bench/: measured beside walrus when present, skipped when not.
PKGS_BENCH="librocksdb-dev libleveldb-dev libsqlite3-dev liblmdb-dev gnuplot-nox"

usage() {
  echo "usage: $0 [build|test|raft|bench|all]..." >&2
  exit 2
}

[ $# -gt 0 ] || set -- build

wanted=""
for group in "$@"; do
  case "$group" in
    build) wanted="$wanted $PKGS_BUILD" ;;
    test) wanted="$wanted $PKGS_BUILD $PKGS_TEST $PKGS_RAFT" ;;
    raft) wanted="$wanted $PKGS_BUILD $PKGS_RAFT" ;;
    bench) wanted="$wanted $PKGS_BUILD $PKGS_BENCH" ;;
    all) wanted="$wanted $PKGS_BUILD $PKGS_TEST $PKGS_RAFT $PKGS_BENCH" ;;
    -h | --help) usage ;;
    *) echo "$0: unknown group '$group'" >&2; usage ;;
  esac
done

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps: no dpkg here; install these yourself if missing:" \
    "$wanted" >&2
  exit 0
fi

missing=""
for pkg in $wanted; do
  case " $missing " in *" $pkg "*) continue ;; esac
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  case "$status" in
    *" installed") ;;
    *) missing="$missing $pkg" ;;
  esac
done

if [ -z "$missing" ]; then
  exit 0
fi

echo "install-deps: installing:$missing"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "install-deps: not root and no sudo; install as root:$missing" >&2
  exit 1
fi

# shellcheck disable=SC2086 # word splitting of the package list is wanted
$SUDO apt-get update
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends $missing
