#!/bin/sh
# tests/test_examples.sh BUILD_DIR - every example answers --help and -h with its usage on
# stdout and exit 0, and an unknown option with its usage on stderr and exit 2.
#
# The examples are listed by name below (a new example adds its name); each must be built in
# BUILD_DIR/examples. Skipped (77) only when the build has examples turned off
# (-DSTRAND_BUILD_EXAMPLES=OFF). Each run has stdin from /dev/null and a time limit, so an
# example that ignores the option and starts serving or reading fails instead of hanging.
# ctest-timeout: 120
set -u

EXAMPLES="demo echo_lines echo_server embed_poll kv_server http_server supervisor"

BUILD=${1:?usage: test_examples.sh BUILD_DIR}
if grep -q '^STRAND_BUILD_EXAMPLES:BOOL=OFF' "$BUILD/CMakeCache.txt" 2>/dev/null; then
    echo "test_examples: examples are not built in $BUILD (STRAND_BUILD_EXAMPLES=OFF): skipped"
    exit 77
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/strand-examples.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
bad=0
fail() { echo "test_examples: FAIL: $*"; bad=1; }

# run NAME ARG: runs the example, leaves its status in $rc, its output in $TMP/out and $TMP/err.
run() {
    timeout -k 2 5 "$BUILD/examples/$1" "$2" </dev/null >"$TMP/out" 2>"$TMP/err"
    rc=$?
}

for name in $EXAMPLES; do
    before=$bad
    bad=0
    prog="$BUILD/examples/$name"
    if [ ! -x "$prog" ]; then
        fail "$prog is not built"
        bad=1
        continue
    fi
    for opt in --help -h; do
        run "$name" "$opt"
        [ "$rc" -eq 0 ] || fail "$name $opt exited $rc, not 0 ($(head -n 1 "$TMP/err"))"
        grep -q '^usage: ' "$TMP/out" || fail "$name $opt printed no 'usage:' line on stdout"
        [ ! -s "$TMP/err" ] || fail "$name $opt wrote to stderr: $(head -n 1 "$TMP/err")"
    done
    run "$name" --no-such-option
    [ "$rc" -eq 2 ] || fail "$name --no-such-option exited $rc, not 2"
    grep -q '^usage: ' "$TMP/err" || fail "$name --no-such-option printed no 'usage:' line on stderr"
    [ ! -s "$TMP/out" ] || fail "$name --no-such-option wrote to stdout: $(head -n 1 "$TMP/out")"
    [ $bad -eq 0 ] && echo "test_examples: $name: --help, -h and an unknown option ok"
    [ $before -eq 0 ] || bad=1
done
if [ $bad -ne 0 ]; then
    exit 1
fi
echo "test_examples: PASS ($(echo $EXAMPLES | wc -w) examples)"
