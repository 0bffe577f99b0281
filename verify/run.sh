#!/bin/bash
# run.sh - model-check the park/unpark protocol (verify/park.pml) with spin.
#
# Called by `make check`. Exits 0 only if
#   1. the real model passes the exhaustive safety search (assertions: no
#      double schedule, claim/lifetime rules; invalid end states; watchdog:
#      no lost wakeup) with the search complete (no depth/memory truncation),
#   2. the real model passes the liveness search (<> every strand DONE,
#      acceptance cycles, no fairness assumption),
#   3. every mutant makes spin FIND an error, of the kind expected for it.
# Anything else exits non-zero with the reason on stderr.
#
# Invariants: nothing is written under verify/. Generated pan sources,
# binaries and trails go to $VERIFY_WORK (default /tmp/verify-work), one
# subdirectory per run, so a trail can be replayed afterwards:
#   cd $VERIFY_WORK/<run> && spin -t -p [-D<MUTANT>] park.pml
# Each pan run is bounded by $VERIFY_TIMEOUT seconds (default 100) and
# $VERIFY_MEMLIM MiB (default 1024); the whole script takes ~30 s on 2 cores.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
MODEL="$HERE/park.pml"
WORK=${VERIFY_WORK:-/tmp/verify-work}
CC=${CC:-gcc}
TMO=${VERIFY_TIMEOUT:-100}
MEMLIM=${VERIFY_MEMLIM:-1024}

# mutant switch -> regex the failure must match (the property it breaks)
MUTANTS=(
    "MUT_CHECK_FIRST|assertion violated.*st\[0\]"      # lost wakeup (watchdog)
    "MUT_PLAIN_PARKED|assertion violated.*st\[0\]"     # lost wakeup (watchdog)
    "MUT_CLAIM_UNLOCKED|assertion violated live\[r\]"  # record used after its wait returned
)

say()  { printf '[verify] %s\n' "$*"; }
fail() { printf '[verify] FAIL: %s\n' "$*" >&2; exit 1; }

command -v spin >/dev/null 2>&1 || fail "spin not found (apt-get install spin)"
command -v "$CC" >/dev/null 2>&1 || fail "C compiler '$CC' not found"
[ -f "$MODEL" ] || fail "model $MODEL missing"

# build NAME "spin -D flags" "cc flags": generate and compile pan in $WORK/NAME
build() {
    local name=$1 sflags=$2 cflags=$3 dir="$WORK/$1"
    rm -rf "$dir" && mkdir -p "$dir" || fail "cannot create $dir"
    cp "$MODEL" "$dir/park.pml"
    (cd "$dir" && spin $sflags -a park.pml >spin.out 2>&1) ||
        { cat "$dir/spin.out" >&2; fail "$name: spin -a failed"; }
    # pan.c is generated code: its warnings are not ours (-w)
    (cd "$dir" && "$CC" -w $cflags -DMEMLIM="$MEMLIM" -o pan pan.c >cc.out 2>&1) ||
        { cat "$dir/cc.out" >&2; fail "$name: compiling pan failed"; }
}

# search NAME "pan flags": run pan, leave its output in $WORK/NAME/pan.out
search() {
    local name=$1 pflags=$2 dir="$WORK/$1" t0 t1 rc
    t0=$(date +%s.%N)
    (cd "$dir" && timeout "$TMO" ./pan $pflags >pan.out 2>&1)
    rc=$?
    t1=$(date +%s.%N)
    [ $rc -eq 124 ] && fail "$name: pan did not finish within ${TMO}s"
    ELAPSED=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
}

field() { # field FILE LABEL: the number right after LABEL ("depth reached 233")
    # or right before it ("3833172 states, stored"), on the first line with LABEL
    grep -m1 -F "$2" "$1" | sed -nE "s/.*$2 ([0-9.e+]+).*/\1/p; t; s/^ *([0-9.e+]+) $2.*/\1/p"
}

# an exhaustive run must have covered the whole state space
complete() {
    local out=$1
    grep -qE 'max search depth too small|Search not completed|out of memory|reached -DMEMLIM' "$out" && return 1
    return 0
}

check_real() { # check_real NAME WHAT "spin flags" "cc flags" "pan flags"
    local name=$1 what=$2 out errs
    build "$name" "$3" "$4"
    search "$name" "$5"
    out="$WORK/$name/pan.out"
    errs=$(grep -m1 -oE 'errors: [0-9]+' "$out" | grep -oE '[0-9]+')
    if [ "${errs:-x}" != 0 ] || ! complete "$out"; then
        cat "$out" >&2
        [ -f "$WORK/$name/park.pml.trail" ] &&
            (cd "$WORK/$name" && spin -t $3 park.pml | grep -E 'MSC:|Error|failed' | sed 's/^ *//') >&2
        fail "$what FAILED (trail in $WORK/$name)"
    fi
    say "$what: $(field "$out" 'states, stored') states stored, $(field "$out" 'states, matched') matched," \
        "$(field "$out" 'transitions') transitions, depth $(field "$out" 'depth reached')," \
        "${ELAPSED}s: no errors"
}

check_mutant() { # check_mutant SWITCH EXPECTED-REGEX
    local m=$1 want=$2 dir="$WORK/$1" out got
    build "$m" "-D$m" "-O0 -DSAFETY"     # the error is found in ~1e4 states: skip optimising
    search "$m" "-m200000 -w22"
    out="$dir/pan.out"
    if grep -qE 'errors: 0' "$out" || [ ! -f "$dir/park.pml.trail" ]; then
        cat "$out" >&2
        fail "mutant $m PASSED: the model no longer detects this bug"
    fi
    got=$(grep -m1 -E '^pan:[0-9]+: ' "$out")
    echo "$got" | grep -qE "$want" ||
        fail "mutant $m failed for an unexpected reason: $got (wanted /$want/)"
    say "mutant $m: spin FOUND an error, as it must (${ELAPSED}s): ${got#pan:1: }"
    say "  counterexample ($(echo "$got" | sed -nE 's/.*at depth ([0-9]+).*/\1/p') steps; replay: cd $dir && spin -t -p -D$m park.pml):"
    (cd "$dir" && spin -t -D"$m" park.pml 2>&1) |
        grep -E 'MSC:|text of failed assertion' | sed -E 's/^ *(MSC: )?/    /'
}

mkdir -p "$WORK" || fail "cannot create $WORK"
say "$(spin -V | head -1); model $MODEL; work dir $WORK"
say "3 strands, 2 workers, 1 outside thread, 2 timers: S2 wakes S0 while S0 parks;" \
    "S0's wake races S1's timer; the thread's wake races S2's timer"

check_real safety "safety (double schedule, claims, record lifetime, lost wakeup)" \
    "" "-O2 -DSAFETY -DCOLLAPSE" "-m200000 -w24"
check_real liveness "liveness (<> all strands DONE, no fairness assumed)" \
    "-DLIVENESS" "-O2 -DCOLLAPSE" "-a -m200000 -w24"

for entry in "${MUTANTS[@]}"; do
    check_mutant "${entry%%|*}" "${entry#*|}"
done

say "OK: the protocol holds and all ${#MUTANTS[@]} mutants are caught"
