#!/usr/bin/env bash
# scripts/check-layers.sh - fails if a file of src/ reaches UP the layer order, by an
# #include or by a call to a strand__ function defined in a higher layer.
#
# The layers, lowest first (a file may use its own layer and those below it, never above):
#   0 base        internal.h context.h context.c config.c futex.c wlock.[ch] arch/* (and strand.h):
#                 the shared types, spinlocks, the context switch, settings, futexes
#   1 memory      stack.c desc.c: stacks and their pool, strand descriptors; a worker's
#                 caches are handed in by
#                 the caller (memory knows nothing of workers)
#   2 timers      timer.c: a passive facility (start, stop, run due, next deadline)
#   3 poller      the readiness backends behind poller.h (netpoll_epoll.c, netpoll_io_uring.c,
#                 chosen at run time by poller.c), and the
#                 strand__netpoll* calls the scheduler makes (POLLER_FUNCS below: they
#                 live in netpoll.c, above the backend, beside the fd waits)
#   4 scheduler   sched_*.c sched_*.h: queues, idle/wake, switching, parking and the
#                 waiter API, workers, host mode, counters
#   5 primitives  what blocks a strand, built on the waiter API and the one wait sequence
#                 (wait.h): chan select sync waitq.h blocking io read_line netpoll.c (fd
#                 records, fd waits, strand_fd_close)
#                 time.c (sleeping) arena.c (per-strand memory: it needs the current strand)
#   6 diagnostics registry dump watchdog signals stats diag.h: they read the layers below
#   7 strands     strand.c (ids, spawn, join, exit; spawn starts the runtime lazily and
#                 registers the strand for the dump), mailbox.c (messages to a strand by id:
#                 it needs the id table, and exit drains it) and runtime.c (init, run,
#                 shutdown): the runtime as a whole
#   8 hook        hook/*: libstrand_hook, a separate library above the whole core; it calls
#                 only the public strand_* API (no strand__ function at all) and libc
# Extra rule: sched_private.h (the worker's struct) is included by src/sched_*.c only.
#
# How: comments are stripped with `gcc -fpreprocessed -E` (nothing is expanded). A function
# is "defined" by a file where its name and '(' start a line at column 0 without a trailing
# ';' (in a header: only `static inline` ones); a call is `strand__name(` on an indented line.
# Calls to functions defined nowhere in src/ (assembly) are not checked. A file that is in no
# layer is an error too: put every new file of src/ in the table below.
#
# Usage: scripts/check-layers.sh [src-dir]    (exit 0: clean; 1: a violation; 2: usage)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SRC=${1:-$ROOT/src}
[ -d "$SRC" ] || { echo "check-layers: no directory $SRC" >&2; exit 2; }
command -v gcc >/dev/null || { echo "check-layers: needs gcc (to strip comments)" >&2; exit 2; }

LAYER_NAMES=(base memory timers poller scheduler primitives diagnostics strands hook)

# file patterns (relative to src/) of each layer, in the order of LAYER_NAMES
LAYER_FILES=(
    "internal.h fate.h context.h context.c config.c futex.c wlock.h wlock.c arch/* strand.h"
    "stack.c desc.c"
    "timer.c"
    "poller.h poller.c netpoll_epoll.c netpoll_io_uring.c"
    "sched_*.c sched_*.h"
    "wait.h wait.c chan.c chan_internal.h select.c sync.c waitq.h blocking.c io.c io_internal.h read_line.c netpoll.c poll.c time.c arena.c"
    "registry.c dump.c watchdog.c signals.c stats.c diag.h symtab.c"
    "strand.c mailbox.c runtime.c cancel.c cancel.h links.c group.c group.h supervisor.c report.c"
    "hook/*"
)

# functions whose layer is not their file's (see layer 3 above)
POLLER_FUNCS="strand__netpoll strand__netpoll_init strand__netpoll_wake strand__netpoll_timer_hint strand__netpoll_fd strand__netpoll_shutdown"
POLLER_LAYER=3

PRIVATE_HEADER=sched_private.h
PRIVATE_USERS="sched_*.c"

layer_of() { # relative path -> layer number, or nothing
    local f=$1 i pat
    for i in "${!LAYER_FILES[@]}"; do
        for pat in ${LAYER_FILES[$i]}; do
            # shellcheck disable=SC2053 # the pattern is meant to glob
            if [[ $f == $pat ]]; then
                echo "$i"
                return
            fi
        done
    done
}

strip() { # file -> its text without comments, no line markers
    gcc -fpreprocessed -dD -E -P -x c "$1" 2>/dev/null
}

cd "$SRC" || exit 2
mapfile -t FILES < <(find . -type f \( -name '*.c' -o -name '*.h' \) | sed 's|^\./||' | sort)

fail=0
declare -A FLAYER DEF_LAYER DEF_FILE

for f in "${FILES[@]}"; do
    l=$(layer_of "$f")
    if [ -z "$l" ]; then
        echo "check-layers: src/$f is in no layer: add it to LAYER_FILES in scripts/check-layers.sh"
        fail=1
        continue
    fi
    FLAYER[$f]=$l
done

# Definitions: the lowest layer that defines a name wins (dump.c's weak fallback of a
# scheduler function must not lift it).
for f in "${!FLAYER[@]}"; do
    l=${FLAYER[$f]}
    if [[ $f == *.h ]]; then
        defs=$(strip "$f" | grep -E '^static[[:space:]]+inline\b' |
               grep -oE '\bstrand__[a-z0-9_]+[[:space:]]*\(' | sed 's/[[:space:]]*($//')
    else
        defs=$(strip "$f" | grep -E '^[A-Za-z_]' | grep -vE ';[[:space:]]*$' |
               grep -oE '\bstrand__[a-z0-9_]+[[:space:]]*\(' | sed 's/[[:space:]]*($//')
    fi
    for d in $defs; do
        if [ -z "${DEF_LAYER[$d]:-}" ] || [ "$l" -lt "${DEF_LAYER[$d]}" ]; then
            DEF_LAYER[$d]=$l
            DEF_FILE[$d]=$f
        fi
    done
done
for d in $POLLER_FUNCS; do
    if [ -n "${DEF_LAYER[$d]:-}" ]; then
        DEF_LAYER[$d]=$POLLER_LAYER
    fi
done

# The hook library links only libstrand.so's exports: no internal name may appear in it.
for f in "${FILES[@]}"; do
    if [[ $f == hook/* ]] && strip "$f" | grep -qE '\bstrand__[a-z0-9_]+'; then
        echo "check-layers: src/$f uses an internal strand__ name; the hook library may use only strand_* (the public API)"
        fail=1
    fi
done

for f in "${FILES[@]}"; do
    l=${FLAYER[$f]:-}
    [ -n "$l" ] || continue
    # includes of src/ headers
    while read -r inc; do
        [ -n "$inc" ] || continue
        il=$(layer_of "$inc")
        if [ -z "$il" ] && [ "$(dirname "$f")" != . ] && [ -f "$(dirname "$f")/$inc" ]; then
            il=$(layer_of "$(dirname "$f")/$inc") # a header beside its file (hook/hook.h)
        fi
        if [ -z "$il" ]; then
            [ -f "$inc" ] || [ -f "$(dirname "$f")/$inc" ] || continue # not ours
            echo "check-layers: src/$f includes \"$inc\", which is in no layer"
            fail=1
        elif [ "$il" -gt "$l" ]; then
            echo "check-layers: src/$f (${LAYER_NAMES[$l]}) includes \"$inc\" (${LAYER_NAMES[$il]}): up the layers"
            fail=1
        fi
        if [ "$inc" = "$PRIVATE_HEADER" ]; then
            # shellcheck disable=SC2053
            if [[ $(basename "$f") != $PRIVATE_USERS ]]; then
                echo "check-layers: src/$f includes \"$PRIVATE_HEADER\", which only $PRIVATE_USERS may"
                fail=1
            fi
        fi
    done < <(grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | sed -E 's/.*"([^"]+)".*/\1/')
    # calls, on indented lines
    while read -r c; do
        [ -n "$c" ] || continue
        cl=${DEF_LAYER[$c]:-}
        [ -n "$cl" ] || continue # defined outside src/*.c (assembly)
        if [ "$cl" -gt "$l" ]; then
            echo "check-layers: src/$f (${LAYER_NAMES[$l]}) calls $c() of src/${DEF_FILE[$c]} (${LAYER_NAMES[$cl]}): up the layers"
            fail=1
        fi
    done < <(strip "$f" | grep -E '^[[:space:]]' | grep -oE '\bstrand__[a-z0-9_]+[[:space:]]*\(' |
             sed 's/[[:space:]]*($//' | sort -u)
done

if [ "$fail" -ne 0 ]; then
    echo "check-layers: FAILED (the layers are listed at the top of scripts/check-layers.sh)"
    exit 1
fi
echo "check-layers: ${#FILES[@]} files of src/, every include and strand__ call goes down or sideways"
exit 0
