#!/usr/bin/env bash
# scripts/install-deps.sh - make sure the Debian packages one of strand's commands needs are
# installed; installs only what is missing.
#
#   scripts/install-deps.sh [SET]      SET = demo or check (default check)
#
#   demo   what `make demo` needs: a C compiler and make (build-essential), cmake, and
#          redis-tools + redis-server (examples/demo_kv.sh runs redis-benchmark against
#          kv_server and against redis-server). The demo builds without tests or benchmarks.
#   check  everything `make check`, `make bench` and `make docs` use (a superset of demo):
#          cmocka for the tests, go for the benchmarks' twins, spin for the model, valgrind,
#          qemu and the aarch64 cross compiler, clang for the fuzzers, doxygen, hiredis and
#          libcurl (tests/hook/ runs them, unmodified, through libstrand_hook), ...
#
# Works as root on a fresh Debian 12 (or with sudo). Runs `apt-get update` at most once, and
# only if something is missing. The arm64 cmocka (for the aarch64 tests under qemu) comes from
# Debian multiarch, so the arm64 architecture is added to dpkg when that package is missing
# (check set only). Prints what it checks and what it does; exits non-zero if an install fails.
set -euo pipefail

DEMO_PACKAGES=(build-essential cmake redis-tools redis-server)
# The check set (the default). DEMO_PACKAGES must stay a subset of it.
PACKAGES=(
    build-essential cmake pkg-config libcmocka-dev golang-go gnuplot-nox spin qemu-user
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross valgrind redis-tools redis-server clang
    libclang-rt-14-dev python3 gdb doxygen libhiredis-dev libcurl4-openssl-dev liburing-dev
)
ARM64_PACKAGES=(libcmocka-dev:arm64)

SET=${1:-check}
case "$SET" in
    demo) PACKAGES=("${DEMO_PACKAGES[@]}"); ARM64_PACKAGES=() ;;
    check) ;;
    -h|--help) sed -n '6,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [demo|check]" >&2; exit 2 ;;
esac

wanted=("${PACKAGES[@]}" "${ARM64_PACKAGES[@]}")
say() { echo "install-deps: $*"; }

if ! command -v dpkg-query >/dev/null 2>&1; then
    say "not a Debian system (no dpkg-query); install these yourself: ${wanted[*]}"
    exit 0
fi

NATIVE=$(dpkg --print-architecture)
# Installed for the native architecture (or arch-independent); "name:arch" asks for that arch.
# (With arm64 added, a plain name may match two instances, amd64 and arm64: look at each.)
installed() {
    local name=${1%%:*} want=$NATIVE
    case "$1" in *:*) want=${1#*:} ;; esac
    dpkg-query -W -f='${db:Status-Status} ${Architecture}\n' "$name" 2>/dev/null |
        grep -Eq "^installed ($want|all)\$"
}

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi
fi
as_root() {
    if [ "$(id -u)" -ne 0 ] && [ ${#SUDO[@]} -eq 0 ]; then
        say "need root to run: $*"
        exit 1
    fi
    "${SUDO[@]}" "$@"
}

missing=()
for p in "${PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done
need_arm64=0
for p in "${ARM64_PACKAGES[@]}"; do
    if ! installed "$p"; then
        missing+=("$p")
        need_arm64=1
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    say "$SET set: all ${#wanted[@]} packages present (${wanted[*]})"
    exit 0
fi

say "$SET set: missing ${missing[*]}"
if [ $need_arm64 -eq 1 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    say "running: dpkg --add-architecture arm64"
    as_root dpkg --add-architecture arm64
fi
say "running: apt-get update"
as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
say "running: apt-get install -y ${missing[*]}"
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"

still=()
for p in "${missing[@]}"; do installed "$p" || still+=("$p"); done
if [ ${#still[@]} -ne 0 ]; then
    say "still missing after install: ${still[*]}"
    exit 1
fi
say "installed: ${missing[*]}"
