#!/usr/bin/env bash
# scripts/check.sh - the steps of `make check`, in order, each under a clear header, timed.
#
# Steps: release build + ctest; ASan+UBSan build + ctest; TSan build + ctest; Valgrind memcheck
# over the core tests; the Promela model (verify/run.sh); the layer check
# (scripts/check-layers.sh); the install test; the aarch64 cross
# build with the core tests under qemu-aarch64; the core tests with the ucontext switch; the
# bounded fuzz run (tests/fuzz/run.sh --bounded). The docs step builds the Doxygen reference of
# include/strand.h into $B/docs/html and fails on any undocumented public symbol or parameter.
#
# Invariants: a failing step fails the whole run (exit 1) but the later steps still run, so one
# run shows everything that is broken. A step whose script does not exist yet is "skipped" and
# counted neither way. The last line printed is exactly "N passed, M failed" (the CI reads it).
# Build directories are $B (release), $B-asan, $B-tsan, $B-debug, $B-aarch64, $B-ucontext.
#
# Each step also has a wall-clock cap (CAP below, seconds; override with CAP_<step>=N): a step
# still running at its cap is killed with everything it started and counts as failed, so a
# deadlocked test can never stall the whole run.
#
# Environment: B (build dir prefix, default build), JOBS (default 2), CTEST_JOBS (default 2),
# STEPS (a space-separated subset of the step names below, default all).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# Called from make: keep the outer make's flags (-w "Entering directory" noise, jobserver) away
# from the inner builds.
unset MAKEFLAGS MFLAGS MAKELEVEL
B=${B:-build}
JOBS=${JOBS:-2}
CTEST_JOBS=${CTEST_JOBS:-2}
ALL_STEPS="release asan tsan valgrind verify layers docs install aarch64 ucontext fuzz"
STEPS=${STEPS:-$ALL_STEPS}
SKIP=77

# ---------------------------------------------------------------- helpers
configure() { # preset dir [extra cmake args...]
    local preset=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    cmake --preset "$preset" -B "$dir" "$@" >"$dir/configure.log" 2>&1 || {
        cat "$dir/configure.log"
        return 1
    }
    grep -E '^-- strand:' "$dir/configure.log" || true
}

build() { # dir [target]
    local dir=$1 target=${2:-all}
    cmake --build "$dir" -j"$JOBS" --target "$target"
}

run_ctest() { # dir [ctest args...]
    local dir=$1
    shift
    ctest --test-dir "$dir" --output-on-failure --no-tests=error -j"$CTEST_JOBS" "$@"
}

run_script() { # path [args...]: a helper's script, run even if it lost its exec bit
    local s=$1
    shift
    if [ -x "$s" ]; then "$s" "$@"; else bash "$s" "$@"; fi
}

# ---------------------------------------------------------------- steps
step_release() {
    configure release "$B" && build "$B" && run_ctest "$B"
}

step_asan() {
    configure asan "$B-asan" && build "$B-asan" || return 1
    STRAND_TEST_SCALE=small \
    ASAN_OPTIONS=abort_on_error=0:detect_leaks=1:check_initialization_order=1:strict_string_checks=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_ctest "$B-asan"
}

# TSan maps its shadow at fixed addresses; with a high mmap ASLR entropy some kernels put the
# program where TSan cannot work ("unexpected memory mapping"). Probe once; if a trivial TSan
# program fails, run the tests with ASLR off for this process tree (setarch -R).
tsan_prefix() {
    local dir probe
    dir=$(mktemp -d /tmp/strand-tsan.XXXXXX)
    probe="$dir/probe"
    printf '#include <pthread.h>\nstatic int x;\nstatic void *f(void *a){(void)a;__atomic_add_fetch(&x,1,__ATOMIC_SEQ_CST);return 0;}\nint main(void){pthread_t t;pthread_create(&t,0,f,0);pthread_join(t,0);return x!=1;}\n' >"$dir/probe.c"
    if ! cc -fsanitize=thread -pthread "$dir/probe.c" -o "$probe" 2>"$dir/cc.log"; then
        cat "$dir/cc.log" >&2
        rm -rf "$dir"
        return 1
    fi
    if "$probe" >/dev/null 2>&1; then
        TSAN_PREFIX=()
        echo "tsan: runs with ASLR on"
    elif setarch "$(uname -m)" -R "$probe" >/dev/null 2>&1; then
        TSAN_PREFIX=(setarch "$(uname -m)" -R)
        echo "tsan: needs ASLR off here: running the tests under setarch -R"
    else
        echo "tsan: a trivial TSan program does not run here, even with ASLR off" >&2
        rm -rf "$dir"
        return 1
    fi
    rm -rf "$dir"
}

step_tsan() {
    configure tsan "$B-tsan" && build "$B-tsan" && tsan_prefix || return 1
    STRAND_TEST_SCALE=small \
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
        "${TSAN_PREFIX[@]}" ctest --test-dir "$B-tsan" --output-on-failure --no-tests=error -j"$CTEST_JOBS"
}

step_valgrind() {
    command -v valgrind >/dev/null || { echo "valgrind not installed"; return 1; }
    configure debug "$B-debug" && build "$B-debug" strand_core_tests || return 1
    STRAND_TEST_SCALE=small run_ctest "$B-debug" -L memcheck
}

step_verify() {
    [ -f verify/run.sh ] || { echo "verify/run.sh does not exist yet"; return $SKIP; }
    run_script verify/run.sh
}

# The reference (docs/Doxyfile) with the strict settings forced here, whatever the Doxyfile
# says: an undocumented symbol, parameter or return value, or a malformed comment, fails.
step_docs() {
    command -v doxygen >/dev/null || { echo "doxygen not installed"; return 1; }
    local out=$B/docs rc=0
    case "$out" in /*) ;; *) out="$ROOT/$out" ;; esac
    mkdir -p "$out"
    rm -f "$out/warnings.log"
    { cat docs/Doxyfile
      printf '%s\n' WARN_IF_UNDOCUMENTED=YES WARN_NO_PARAMDOC=YES WARN_IF_DOC_ERROR=YES \
          WARN_AS_ERROR=FAIL_ON_WARNINGS "WARN_LOGFILE=$out/warnings.log"
    } | STRAND_DOCS_OUT="$out" doxygen - || rc=$?
    local n
    n=$(grep -cE ": (warning|error):" "$out/warnings.log" 2>/dev/null || true)
    n=${n:-0}
    [ "$n" -eq 0 ] || cat "$out/warnings.log"
    echo "docs: $n doxygen warning(s); reference in $out/html/index.html"
    [ "$rc" -eq 0 ] && [ "$n" -eq 0 ] && [ -f "$out/html/index.html" ]
}

step_layers() {
    run_script scripts/check-layers.sh
}

step_install() {
    [ -f "$B/CMakeCache.txt" ] || { configure release "$B" && build "$B" || return 1; }
    run_script tests/test_install.sh "$B"
}

step_aarch64() {
    command -v aarch64-linux-gnu-gcc >/dev/null || { echo "aarch64-linux-gnu-gcc not installed"; return 1; }
    command -v qemu-aarch64 >/dev/null || { echo "qemu-aarch64 not installed"; return 1; }
    configure aarch64 "$B-aarch64" && build "$B-aarch64" strand_core_tests || return 1
    # qemu-user passes MADV_GUARD_INSTALL to the host kernel, but a fault on a guard region
    # is, to qemu, a fault on a page it believes mapped: it dies instead of delivering
    # SIGSEGV to the program. So the emulated run uses the fallback guards (pages, canaries);
    # the guard regions themselves are tested natively.
    STRAND_GUARD_FALLBACK=1 STRAND_TEST_SCALE=small run_ctest "$B-aarch64" -L core
}

step_ucontext() {
    configure ucontext "$B-ucontext" && build "$B-ucontext" strand_core_tests || return 1
    run_ctest "$B-ucontext" -L core
}

step_fuzz() {
    [ -f tests/fuzz/run.sh ] || { echo "tests/fuzz/run.sh does not exist yet"; return $SKIP; }
    run_script tests/fuzz/run.sh --bounded
}

# ---------------------------------------------------------------- driver
declare -A TITLE=(
    [release]="release build + ctest"
    [asan]="ASan+UBSan build + ctest"
    [tsan]="TSan build + ctest"
    [valgrind]="valgrind memcheck over the core tests"
    [verify]="Promela model (verify/run.sh)"
    [layers]="layers call down only (scripts/check-layers.sh)"
    [docs]="Doxygen reference of include/strand.h, no warnings"
    [install]="install test (pkg-config, find_package, exports)"
    [aarch64]="aarch64 cross build + core tests under qemu-aarch64"
    [ucontext]="core tests with STRAND_FORCE_UCONTEXT=ON"
    [fuzz]="bounded fuzz run (tests/fuzz/run.sh --bounded)"
)

declare -A CAP=(
    [release]=600 [asan]=480 [tsan]=600 [valgrind]=480 [verify]=360
    [docs]=120 [install]=180 [aarch64]=480 [ucontext]=300 [fuzz]=300
    [layers]=60
)

# Steps run in a child bash under timeout(1), which kills the step's whole process group at the
# cap; INT/TERM given to this script are passed on so nothing is left running.
export B JOBS CTEST_JOBS SKIP ROOT
export -f configure build run_ctest run_script tsan_prefix
for s in $ALL_STEPS; do export -f "step_$s"; done
step_pid=
trap '[ -n "$step_pid" ] && kill -TERM "$step_pid" 2>/dev/null; wait; exit 130' INT TERM

passed=0
failed=0
skipped=0
summary=()
t_all=$SECONDS
n=$(wc -w <<<"$STEPS")
i=0
for s in $STEPS; do
    i=$((i + 1))
    if [ -z "${TITLE[$s]:-}" ]; then
        echo "check: unknown step '$s' (steps: $ALL_STEPS)" >&2
        exit 2
    fi
    echo
    echo "=================================================================="
    echo "== [$i/$n] $s: ${TITLE[$s]}"
    echo "=================================================================="
    cap_var="CAP_$s"
    cap=${!cap_var:-${CAP[$s]}}
    t0=$SECONDS
    timeout -k 20 "$cap" bash -c "step_$s" &
    step_pid=$!
    wait "$step_pid"
    rc=$?
    step_pid=
    dt=$((SECONDS - t0))
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        echo "== $s: still running at its cap of ${cap}s: killed"
    fi
    if [ $rc -eq 0 ]; then
        res=PASS
        passed=$((passed + 1))
    elif [ $rc -eq $SKIP ]; then
        res=SKIP
        skipped=$((skipped + 1))
    else
        res=FAIL
        failed=$((failed + 1))
    fi
    echo "== $s: $res (${dt}s)"
    summary+=("$(printf '  %-9s %-4s %5ss  %s' "$s" "$res" "$dt" "${TITLE[$s]}")")
done

echo
echo "=================================================================="
echo "== make check summary (total $((SECONDS - t_all))s)"
printf '%s\n' "${summary[@]}"
[ $skipped -eq 0 ] || echo "  ($skipped step(s) skipped: their scripts do not exist yet)"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
