#!/bin/sh
# tests/fuzz/run.sh - build and run strand's libFuzzer targets (clang-14,
# -fsanitize=fuzzer,address,undefined).
#
#   tests/fuzz/run.sh              every target for $STRAND_FUZZ_SECS (default 300) seconds each,
#                                  corpus kept in $BUILD/corpus/<target> (make fuzz)
#   tests/fuzz/run.sh --bounded    every target for ~20 s, on a throw-away copy of the seeds
#                                  (make check); fails if a target finds a crash
#   tests/fuzz/run.sh --build      only build
# Environment: STRAND_FUZZ_BUILD (default build-fuzz/ at the top of the tree), CLANG (clang-14),
# STRAND_FUZZ_SECS.
#
# The library is compiled here, not by CMake: every source with -fsanitize=fuzzer-no-link so
# the fuzzer sees coverage inside the runtime, and STRAND_ASAN so the context switches are
# announced to ASan. A target is one tests/fuzz/fuzz_<name>.c with seeds in seeds/<name>/.
# Crash inputs land in $BUILD/crash-*; reproduce with: $BUILD/fuzz_<name> <crash file>.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${STRAND_FUZZ_BUILD:-$top/build-fuzz}
cc=${CLANG:-clang-14}
mode=full
secs=${STRAND_FUZZ_SECS:-300}
case "${1:-}" in
--bounded) mode=bounded; secs=${STRAND_FUZZ_SECS:-20} ;;
--build) mode=build ;;
"") ;;
*) echo "usage: $0 [--bounded|--build]" >&2; exit 2 ;;
esac

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "run.sh: $cc not found (apt-get install clang-14); skipping the fuzzers" >&2
    exit 77
fi

mkdir -p "$build/obj"
cflags="-std=c11 -D_GNU_SOURCE -DSTRAND_ASAN -g -O1 -fno-omit-frame-pointer
        -fsanitize=address,undefined -fno-sanitize-recover=all -fsanitize=fuzzer-no-link
        -I$top/include -iquote $top/src -Wall -Wextra -Wno-unused-command-line-argument"
case "$(uname -m)" in
x86_64) ctx="$top/src/arch/switch_x86_64.S" ;;
aarch64) ctx="$top/src/arch/switch_aarch64.S" ;;
*) ctx="$top/src/arch/switch_ucontext.c"; cflags="$cflags -DSTRAND_CTX_UCONTEXT" ;;
esac

# Build the library objects (only what changed).
objs=""
for src in "$top"/src/*.c "$ctx"; do
    base=$(basename "$src")
    # The io_uring backend needs liburing; without STRAND_HAVE_LIBURING poller.c uses epoll,
    # and no fuzzer reaches the poller anyway.
    [ "$base" = netpoll_io_uring.c ] && continue
    obj="$build/obj/${base%.*}.o"
    if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find "$top/src" "$top/include" -name '*.h' -newer "$obj" 2>/dev/null | head -1)" ]; then
        # shellcheck disable=SC2086
        $cc $cflags -c "$src" -o "$obj"
    fi
    objs="$objs $obj"
done

targets=""
for f in "$here"/fuzz_*.c; do
    name=$(basename "$f" .c)
    # shellcheck disable=SC2086
    $cc $cflags -fsanitize=fuzzer "$f" $objs -o "$build/$name" -lpthread -lm
    targets="$targets $name"
done
[ "$mode" = build ] && exit 0

status=0
for name in $targets; do
    short=${name#fuzz_}
    seeds="$here/seeds/$short"
    if [ "$mode" = bounded ]; then
        corpus=$(mktemp -d)
    else
        corpus="$build/corpus/$short"
        mkdir -p "$corpus"
    fi
    echo "== $name: ${secs}s"
    # -timeout: one input taking > 10 s is a hang (strand_read_line waits at most 5 s).
    if ! ( cd "$build" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
           ./"$name" -max_total_time="$secs" -timeout=10 -max_len=4096 -print_final_stats=1 \
           "$corpus" "$seeds" ) >"$build/$name.log" 2>&1; then
        echo "run.sh: $name FAILED; see $build/$name.log" >&2
        tail -30 "$build/$name.log" >&2
        status=1
    else
        grep -E "stat::number_of_executed_units|stat::new_units_added" "$build/$name.log" | tr '\n' ' '
        echo
    fi
    [ "$mode" = bounded ] && rm -rf "$corpus"
done
exit $status
