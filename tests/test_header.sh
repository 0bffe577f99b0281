#!/bin/sh
# tests/test_header.sh BUILD_DIR - include/strand.h is valid C11 and C++11/17/20, with one ABI.
#
#  1. The header alone compiles as C11 with -Wall -Wextra -Werror -pedantic.
#  2. tests/cxx/strand_cxx.cpp builds with g++ -std=c++11, c++17 and c++20 (-Wall -Wextra
#     -Werror -pedantic) against BUILD_DIR's library and runs: a strand spawned from C++ is
#     joined with its result, a channel carries a value, a mutex locks.
#  3. Every public struct's size and alignment and every field's offset and size are the same
#     as the C compiler sees them (tests/cxx/layout.c vs strand_cxx --layout, see layout.inc).
# Plain builds link the shared library (only exported strand_* symbols are reachable);
# sanitizer builds link the static one with the same sanitizer flags.
# Exit 77 (CTest: skipped) when no C++ compiler is installed.
# ctest-timeout: 180
# ctest-label: header
set -u
build=$(cd "${1:?usage: test_header.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
cc=${CC:-cc}
cxx=${CXX:-g++}
command -v "$cxx" >/dev/null 2>&1 || { echo "$cxx not installed: skipped"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "test_header: FAIL: $*" >&2; exit 1; }
warn="-Wall -Wextra -Werror -pedantic"

san=$(sed -n 's/^STRAND_SANITIZE_FLAGS:INTERNAL=//p' "$build/CMakeCache.txt" 2>/dev/null)
if [ -n "$san" ]; then
    lib=$(find "$build" -maxdepth 2 -name libstrand.a | head -1)
    [ -n "$lib" ] || fail "no libstrand.a under $build"
    link="$lib -lpthread -lm $(sed -n 's/^STRAND_STATIC_EXTRA_LIBS:INTERNAL=//p' "$build/CMakeCache.txt")"
else
    lib=$(find "$build" -maxdepth 2 -name libstrand.so | head -1)
    [ -n "$lib" ] || fail "no libstrand.so under $build"
    libdir=$(dirname "$lib")
    link="-L$libdir -Wl,-rpath,$libdir -lstrand -lpthread"
fi

printf '#include "strand.h"\n' >"$tmp/h.c"
# shellcheck disable=SC2086
$cc -std=c11 $warn -I"$top/include" -c "$tmp/h.c" -o "$tmp/h.o" || fail "strand.h as C11"
echo "test_header: strand.h compiles as C11 -pedantic"

# shellcheck disable=SC2086
$cc -std=c11 $warn -I"$top/include" "$here/cxx/layout.c" -o "$tmp/layout_c" || fail "layout.c"
"$tmp/layout_c" >"$tmp/layout_c.txt" || fail "layout_c did not run"

for std in c++11 c++17 c++20; do
    # shellcheck disable=SC2086
    $cxx -std=$std $warn $san -I"$top/include" "$here/cxx/strand_cxx.cpp" $link \
        -o "$tmp/cxx_$std" || fail "strand_cxx.cpp as $std"
    "$tmp/cxx_$std" || fail "strand_cxx ($std) failed"
    "$tmp/cxx_$std" --layout >"$tmp/layout_$std.txt" || fail "strand_cxx --layout ($std)"
    diff -u "$tmp/layout_c.txt" "$tmp/layout_$std.txt" || fail "layout differs between C11 and $std"
    echo "test_header: $std builds, runs, and has C's layout ($(wc -l <"$tmp/layout_c.txt") entries)"
done
echo "test_header: ok"
