#!/bin/sh
# tests/test_gdb.sh BUILD_DIR - tools/strand-gdb.py against a live process and a core file.
#
# Compiles tests/gdb_target.c (-g -O0) against BUILD_DIR/libstrand.a, starts it, waits for
# "READY <recv id> <join id>", then:
#   1. attaches gdb: `info strands` must list the parked strands with what they wait on, and
#      `strand bt <recv id>` must walk from strand__park (the channel code between may be inlined) into parked_in_recv;
#   2. starts it again with STRAND_GUARD_FALLBACK=1 (gcore cannot copy a mapping holding guard
#      regions), writes a core file with gcore, kills it and runs the same commands on the core.
# Exit 77 (CTest: skipped) when gdb is missing or ptrace is not permitted.
# ctest-timeout: 180
# ctest-label: gdb
set -u
build=$(cd "${1:?usage: test_gdb.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
command -v gdb >/dev/null 2>&1 || { echo "gdb not installed: skipped"; exit 77; }
# A sanitizer build's shadow memory and fiber bookkeeping get in gdb's way: plain builds only.
if grep -Eq '^STRAND_SANITIZE:[A-Z]*=(address|thread)' "$build/CMakeCache.txt" 2>/dev/null; then
    echo "sanitizer build: skipped"; exit 77
fi
lib=$(find "$build" -maxdepth 2 -name libstrand.a | head -1)
[ -n "$lib" ] || { echo "no libstrand.a under $build"; exit 1; }

tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

cc=${CC:-cc}
# Same sanitizer flags as the library, if it was built with some.
san=$(grep -o 'fsanitize=[a-z,]*' "$build/CMakeCache.txt" 2>/dev/null | head -1)
$cc -std=c11 -D_GNU_SOURCE -g -O0 -fno-omit-frame-pointer ${san:+-$san} -I"$top/include" \
    "$here/gdb_target.c" "$lib" -o "$tmp/target" -lpthread -lm \
    $(sed -n 's/^STRAND_STATIC_EXTRA_LIBS:INTERNAL=//p' "$build/CMakeCache.txt") || exit 1

# start_target [ENV=VALUE]: run the target, wait for READY, set pid, recv_id, join_id.
start_target() {
    env "$@" "$tmp/target" >"$tmp/out" 2>"$tmp/err" &
    pid=$!
    local i=0
    while ! grep -q READY "$tmp/out" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt 100 ] && { echo "target never got ready"; cat "$tmp/err"; exit 1; }
        sleep 0.1
    done
    set -- $(cat "$tmp/out")
    recv_id=$2
    join_id=$3
}
start_target

run_gdb() { # $@: what to load (-p PID, or program + core)
    timeout 60 gdb -nx -batch -q \
        -ex "source $top/tools/strand-gdb.py" \
        -ex "info strands" \
        -ex "strand bt $recv_id" \
        "$@" 2>&1
}

fail=0
check() { # $1 label, $2 output file
    for want in "\"gdb-recv\"" "\"gdb-join\"" "\"gdb-mbox\"" "waits on: chan recv 0x" \
                "waits on: join of strand $recv_id" "waits on: mailbox" \
                "strand__park" "parked_in_recv" "recv_main"; do
        if ! grep -qF -- "$want" "$2"; then
            echo "FAIL ($1): no \"$want\" in:"; cat "$2"; fail=1; return
        fi
    done
    echo "ok ($1)"
}

run_gdb -p "$pid" >"$tmp/live.txt"
if grep -q "ptrace: Operation not permitted" "$tmp/live.txt"; then
    echo "ptrace not permitted: skipped"; exit 77
fi
check "live process" "$tmp/live.txt"
kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=

# gdb's gcore drops every mapping it cannot read whole, and a slab of stacks with guard
# regions (MADV_GUARD_INSTALL) is one such mapping: the core file is written from a target
# whose stacks use the fallback's guard pages (docs/debugging.md says the same).
start_target STRAND_GUARD_FALLBACK=1
run_gdb -p "$pid" -ex "gcore $tmp/core" >"$tmp/live2.txt"
kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=
if [ -f "$tmp/core" ]; then
    run_gdb "$tmp/target" "$tmp/core" >"$tmp/core.txt"
    check "core file" "$tmp/core.txt"
else
    echo "FAIL: gcore wrote no core file"; cat "$tmp/live2.txt"; fail=1
fi
exit $fail
