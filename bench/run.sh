#!/usr/bin/env bash
# bench/run.sh - strand's benchmarks against their Go twins (and, for echo and resp, against
# a hand-written epoll server and redis-server). Called by `make bench` as
#     bench/run.sh [BUILD_DIR]          (default: $STRAND_BUILD_DIR, else build)
# Environment: BENCH_RUNS (default 5) runs of each side, alternated strand/Go so drift in
# machine load hits both alike; BENCH_ONLY="yield ring ..." runs a subset (BENCH_ONLY=http: both
# HTTP rows; resp: the three RESP loads, or resp_p16 / resp_c1000 alone; BENCH_ONLY="hook_read
# hiredis_hook": the hook's rows). echo, resp and http run strand's server once per poller
# backend (STRAND_POLLER=epoll, then io_uring: the *_uring rows). BENCH_HTTP_RUNS (default 3)
# and BENCH_HTTP_SECS (default 5) for the wrk runs.
#
# Invariants:
#  - Every figure reported is a median over the runs that succeeded, never a single run; a
#    missing or failing binary gives "n/a" and the run goes on.
#  - Each program prints one line "RESULT <name> <value> <unit>"; only that line is read.
#  - Servers this script starts are killed before it exits (trap) and listen on 127.0.0.1
#    only. The echo servers bind port 0 and print "LISTENING <port>": the kernel picks a
#    port nobody holds, so a bind can never fail; the others get a port checked free just
#    before use.
#  - Only bash, awk and coreutils here (plus go, gnuplot, redis-* when present).
#  - Output: a table on stdout, bench/results/latest.json and bench/results/latest.png.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-${STRAND_BUILD_DIR:-build}}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
RUNS=${BENCH_RUNS:-5}
ONLY=${BENCH_ONLY:-}
BIN=$BUILD/bench
GOBIN=$BUILD/bench/go
RESULTS=$ROOT/bench/results
TMP=$(mktemp -d "${TMPDIR:-/tmp}/strand-bench.XXXXXX")
TIMEOUT=${BENCH_TIMEOUT:-60}
# redis-benchmark moves 400,000 requests per run per server: fewer runs keep `make bench`
# within its time budget (still a median, of 3).
RESP_RUNS=${BENCH_RESP_RUNS:-$((RUNS < 3 ? RUNS : 3))}
# idle_mem parks a million strands (and goroutines) per run; its figure hardly varies.
MEM_RUNS=$((RUNS < 3 ? RUNS : 3))
SERVER_PID=
ENV=$(command -v env) # servers started as "$ENV" STRAND_POLLER=... prog: one row per backend

cleanup() {
    stop_server
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }

wanted() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }

# ------------------------------------------------------------------ Go twins
build_go() {
    if ! command -v go >/dev/null; then
        log "run.sh: go not found: every Go column will be n/a"
        return
    fi
    mkdir -p "$GOBIN"
    # No network, no modules beyond std; caches inside the build dir so this works as any
    # user (root included) on a fresh machine.
    local env=(env GOPATH="$BUILD/go-path" GOCACHE="$BUILD/go-cache" GOPROXY=off
               GOFLAGS= GO111MODULE=on GOTOOLCHAIN=local CGO_ENABLED=0)
    local t
    for t in micro echo http; do
        if ! (cd "$ROOT/bench/go" && "${env[@]}" go build -o "$GOBIN/$t" "./$t") >&2; then
            log "run.sh: go build of bench/go/$t failed"
        fi
    done
}

# ------------------------------------------------------------------ running and medians
# run_once FILE CMD...: run CMD, append its RESULT value to FILE. Returns 2 when the
# program is missing, 1 when it failed (exit status, no RESULT line, or timeout).
run_once() {
    local out=$1; shift
    local a
    for a in "$@"; do # the first path in the command is the program
        case $a in */*) [ -x "$a" ] || { log "  missing: $a"; return 2; }; break ;; esac
    done
    local v st
    timeout -k 5 "$TIMEOUT" "$@" >"$TMP/stdout" 2>"$TMP/stderr"
    st=$?
    v=$(awk '$1 == "RESULT" { v = $3 } END { if (v != "") print v }' "$TMP/stdout")
    if [ $st = 0 ] && [ -n "$v" ]; then
        echo "$v" >>"$out"
    else
        [ $st = 124 ] && st="timeout after ${TIMEOUT}s"
        log "  failed ($st): $* ($(tail -n 1 "$TMP/stderr" 2>/dev/null))"
        return 1
    fi
}

# median FILE: the median of the numbers in FILE, or n/a.
median() {
    [ -s "$1" ] || { echo n/a; return; }
    sort -g "$1" | awk '{ a[NR] = $1 }
        END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

count() { [ -s "$1" ] && wc -l <"$1" || echo 0; }

# ------------------------------------------------------------------ results
# One row per line in $TMP/rows, tab separated:
#   name unit strand base base_name ratio goal_kind goal_value goal_text met nS nB
# goal_kind: ratio_le / ratio_ge (ratio strand/base), abs_le (strand value), none.
ROWS=$TMP/rows
: >"$ROWS"

add_row() { # name unit strand base base_name goal_kind goal_value goal_text nS nB
    awk -v n="$1" -v u="$2" -v s="$3" -v b="$4" -v bn="$5" -v gk="$6" -v gv="$7" -v gt="$8" \
        -v ns="$9" -v nb="${10}" 'BEGIN {
        r = (s != "n/a" && b != "n/a" && b + 0 != 0) ? s / b : "n/a"
        met = "n/a"
        if (gk == "abs_le" && s != "n/a") met = (s + 0 <= gv + 0) ? "yes" : "no"
        if (gk == "ratio_le" && r != "n/a") met = (r + 0 <= gv + 0) ? "yes" : "no"
        if (gk == "ratio_ge" && r != "n/a") met = (r + 0 >= gv + 0) ? "yes" : "no"
        if (gk == "none") met = "-"
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n, u, s, b, bn, r, gk, gv, gt, met, ns, nb
    }' >>"$ROWS"
}

# bench NAME UNIT GOAL_KIND GOAL_VALUE GOAL_TEXT -- STRAND_CMD... -- GO_CMD...
# RUNS_CAP=n before the call lowers the number of runs for that benchmark.
bench() {
    local name=$1 unit=$2 gk=$3 gv=$4 gt=$5; shift 5
    wanted "$name" || return 0
    [ "$1" = -- ] && shift
    local scmd=() gcmd=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do scmd+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    gcmd=("$@")
    local sf=$TMP/$name.strand gf=$TMP/$name.go r
    : >"$sf"; : >"$gf"
    local t0=$SECONDS
    log "== $name"
    # A side that is missing, or failed twice, is not run again: a hung program would
    # otherwise cost RUNS timeouts.
    local sbad=0 gbad=0 rc runs=${RUNS_CAP:-$RUNS}
    [ "$runs" -gt "$RUNS" ] && runs=$RUNS
    [ ${#gcmd[@]} -gt 0 ] || gbad=2
    for ((r = 1; r <= runs; r++)); do
        if [ $sbad -lt 2 ]; then
            run_once "$sf" "${scmd[@]}"; rc=$?
            [ $rc = 2 ] && sbad=2; [ $rc = 1 ] && sbad=$((sbad + 1))
        fi
        if [ $gbad -lt 2 ]; then
            run_once "$gf" "${gcmd[@]}"; rc=$?
            [ $rc = 2 ] && gbad=2; [ $rc = 1 ] && gbad=$((gbad + 1))
        fi
    done
    log "   medians: strand $(median "$sf"), go $(median "$gf") ($((SECONDS - t0)) s)"
    add_row "$name" "$unit" "$(median "$sf")" "$(median "$gf")" go "$gk" "$gv" "$gt" \
        "$(count "$sf")" "$(count "$gf")"
}

# ------------------------------------------------------------------ servers
port_free() { [ -z "$(ss -Htln "sport = :$1" 2>/dev/null)" ]; }

# A port below the kernel's ephemeral range: a client socket's port there (the load
# generators' connections linger in TIME_WAIT) would make the server's bind fail.
pick_port() {
    local low
    low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
    [ "${low:-0}" -gt 12000 ] || low=32768
    local p=$((10000 + (RANDOM % (low - 10000))))
    while ! port_free "$p"; do p=$((p + 1)); done
    echo "$p"
}

# start_server PORT CMD...: start CMD in the background, wait until PORT listens.
start_server() {
    local port=$1; shift
    [ -x "$1" ] || return 1
    "$@" >"$TMP/server.log" 2>&1 &
    SERVER_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        port_free "$port" || return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    log "  server did not start: $* ($(tail -n 1 "$TMP/server.log"))"
    stop_server
    return 1
}

# gone PID: the process has exited (a zombie counts: it is ours, `wait` reaps it).
gone() {
    local st
    st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)
    [ -z "$st" ] || [ "$st" = Z ]
}

# SIGTERM, then SIGKILL after 3 s, so a server that ignores TERM cannot hang `wait`.
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill "$SERVER_PID" 2>/dev/null
    local i
    for ((i = 0; i < 60; i++)); do
        gone "$SERVER_PID" && break
        sleep 0.05
    done
    gone "$SERVER_PID" || { log "  server $SERVER_PID ignored SIGTERM: killed"; kill -KILL "$SERVER_PID" 2>/dev/null; }
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
}

# start_port0_server CMD...: start CMD (a server that binds port 0 and prints
# "LISTENING <port>") in the background; wait for that line and put the port in
# SERVER_PORT. No port is chosen here, so none can be taken by someone else meanwhile.
start_port0_server() {
    SERVER_PORT=
    [ -x "$1" ] || { log "  missing: $1"; return 1; }
    "$@" >"$TMP/server.log" 2>&1 &
    SERVER_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        # Printed after listen() returned: from then on connections queue in the backlog.
        SERVER_PORT=$(awk '$1 == "LISTENING" { print $2; exit }' "$TMP/server.log")
        [ -n "$SERVER_PORT" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    log "  server did not start: $* ($(tail -n 1 "$TMP/server.log"))"
    stop_server
    return 1
}

# echo_once FILE SERVER_CMD...: one loadgen run against a fresh server on a kernel-chosen port.
echo_once() {
    local out=$1; shift
    start_port0_server "$@" || return 0
    run_once "$out" "$BIN/loadgen" "$SERVER_PORT" 100 2 2 64
    stop_server
}

bench_echo() {
    wanted echo || return 0
    log "== echo (loadgen: 100 connections, 64-byte messages, 2 s)"
    local sf=$TMP/echo.strand uf=$TMP/echo.uring gf=$TMP/echo.go ef=$TMP/echo.epoll r
    : >"$sf"; : >"$uf"; : >"$gf"; : >"$ef"
    if [ ! -x "$BIN/loadgen" ]; then
        log "  $BIN/loadgen missing"
    else
        for ((r = 1; r <= RUNS; r++)); do
            echo_once "$sf" "$ENV" STRAND_POLLER=epoll "$BIN/echo_strand"
            echo_once "$uf" "$ENV" STRAND_POLLER=io_uring "$BIN/echo_strand"
            echo_once "$gf" "$GOBIN/echo"
            echo_once "$ef" "$BIN/echo_epoll"
        done
    fi
    local s u g e
    s=$(median "$sf"); u=$(median "$uf"); g=$(median "$gf"); e=$(median "$ef")
    add_row echo req/s "$s" "$g" go ratio_ge 1.3 ">=1.3x Go" "$(count "$sf")" "$(count "$gf")"
    add_row echo_vs_epoll req/s "$s" "$e" epoll ratio_ge 0.9 ">=0.9x epoll" "$(count "$sf")" "$(count "$ef")"
    add_row echo_uring req/s "$u" "$g" go ratio_ge 1.3 ">=1.3x Go" "$(count "$uf")" "$(count "$gf")"
    add_row echo_uring_vs_ep req/s "$u" "$e" epoll ratio_ge 0.9 ">=0.9x epoll" "$(count "$uf")" "$(count "$ef")"
}

# resp_once SET_FILE GET_FILE SERVER_CMD...: the server gets the port appended unless
# its command contains the word PORT, which is replaced.
resp_once() {
    local sfile=$1 gfile=$2; shift 2
    local port a cmd=()
    port=$(pick_port)
    for a in "$@"; do [ "$a" = PORT ] && cmd+=("$port") || cmd+=("$a"); done
    [[ " $* " == *" PORT "* ]] || cmd+=("$port")
    start_server "$port" "${cmd[@]}" || return 0
    local out
    out=$(timeout "$TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$port" -t set,get $RESP_LOAD -q 2>&1 |
          tr '\r' '\n')
    stop_server
    local set get
    set=$(awk -F'[: ]+' '$1 == "SET" { v = $2 } END { print v }' <<<"$out")
    get=$(awk -F'[: ]+' '$1 == "GET" { v = $2 } END { print v }' <<<"$out")
    [ -n "$set" ] && echo "$set" >>"$sfile"
    [ -n "$get" ] && echo "$get" >>"$gfile"
    [ -n "$set" ] && [ -n "$get" ] || log "  redis-benchmark failed against ${cmd[*]}"
}

# bench_resp SUFFIX LOAD...: kv_server on each backend against redis-server under one
# redis-benchmark load (LOAD: its -c/-n/-P options); rows resp_set$SUFFIX, resp_get$SUFFIX
# (epoll) and resp_set_uring$SUFFIX, resp_get_uring$SUFFIX.
bench_resp() {
    local sfx=$1; shift
    wanted resp || wanted "resp$sfx" || return 0
    RESP_LOAD="$*"
    log "== resp$sfx (redis-benchmark -t set,get $RESP_LOAD)"
    local kv=$BUILD/examples/kv_server r
    local ks=$TMP/resp.kv.set kg=$TMP/resp.kv.get rs=$TMP/resp.redis.set rg=$TMP/resp.redis.get
    local us=$TMP/resp.uring.set ug=$TMP/resp.uring.get
    : >"$ks"; : >"$kg"; : >"$rs"; : >"$rg"; : >"$us"; : >"$ug"
    if ! command -v redis-benchmark >/dev/null; then
        log "  redis-benchmark not installed"
    else
        [ -x "$kv" ] || log "  $kv missing: kv_server column n/a"
        for ((r = 1; r <= RESP_RUNS; r++)); do
            [ -x "$kv" ] && resp_once "$ks" "$kg" "$ENV" STRAND_POLLER=epoll "$kv"
            [ -x "$kv" ] && resp_once "$us" "$ug" "$ENV" STRAND_POLLER=io_uring "$kv"
            command -v redis-server >/dev/null &&
                resp_once "$rs" "$rg" "$(command -v redis-server)" --port PORT --bind 127.0.0.1 \
                    --save '' --appendonly no --daemonize no --logfile '' --maxclients 10000
        done
    fi
    add_row "resp_set$sfx" req/s "$(median "$ks")" "$(median "$rs")" redis ratio_ge 1.0 ">=1.0x redis" "$(count "$ks")" "$(count "$rs")"
    add_row "resp_get$sfx" req/s "$(median "$kg")" "$(median "$rg")" redis ratio_ge 1.0 ">=1.0x redis" "$(count "$kg")" "$(count "$rg")"
    add_row "resp_set_uring$sfx" req/s "$(median "$us")" "$(median "$rs")" redis ratio_ge 1.0 ">=1.0x redis" "$(count "$us")" "$(count "$rs")"
    add_row "resp_get_uring$sfx" req/s "$(median "$ug")" "$(median "$rg")" redis ratio_ge 1.0 ">=1.0x redis" "$(count "$ug")" "$(count "$rg")"
}

# ------------------------------------------------------------------ libstrand_hook
# hook_read: one hooked read(2) that does not block, against libc's own read (same
# program, same socket; bench/hook/hook_read.c). Goal: none (a cost to know).
# hiredis_hook: hiredis's synchronous API through the hook (50 strands, SET/GET) against
# redis-benchmark -c 50 -t set,get on the same redis-server, in the same run; the
# baseline is the mean of redis-benchmark's SET and GET rates. Goal >= 0.9x.
bench_hook() {
    if wanted hook_read; then
        log "== hook_read"
        local hf=$TMP/hook_read.hooked pf=$TMP/hook_read.plain rf=$TMP/hook_read.recv r
        : >"$hf"; : >"$pf"; : >"$rf"
        for ((r = 1; r <= RUNS; r++)); do
            run_once "$hf" "$BIN/hook_read" hooked
            run_once "$pf" "$BIN/hook_read" plain
            run_once "$rf" "$BIN/hook_read" recv
        done
        add_row hook_read ns/read "$(median "$hf")" "$(median "$pf")" libc_read none 0 "-" \
            "$(count "$hf")" "$(count "$pf")"
        # the system call the hooked read makes: the difference is the hook's own cost
        add_row hook_read_recv ns/read "$(median "$hf")" "$(median "$rf")" libc_recv none 0 "-" \
            "$(count "$hf")" "$(count "$rf")"
    fi
    wanted hiredis_hook || return 0
    log "== hiredis_hook (50 strands x SET/GET vs redis-benchmark -c 50 -t set,get)"
    local sf=$TMP/hiredis.strand bf=$TMP/hiredis.bench
    : >"$sf"; : >"$bf"
    if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
        log "  redis-server or redis-benchmark not installed"
    elif [ ! -x "$BIN/hiredis_hook" ]; then
        log "  $BIN/hiredis_hook missing (hiredis not found at configure time)"
    else
        local port out set get
        port=$(pick_port)
        if start_server "$port" "$(command -v redis-server)" --port "$port" --bind 127.0.0.1 \
                --save '' --appendonly no --daemonize no --logfile ''; then
            for ((r = 1; r <= RESP_RUNS; r++)); do
                run_once "$sf" "$BIN/hiredis_hook" "$port" 200000
                out=$(timeout "$TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$port" -t set,get \
                      -c 50 -n 100000 -q 2>&1 | tr '\r' '\n')
                set=$(awk -F'[: ]+' '$1 == "SET" { v = $2 } END { print v }' <<<"$out")
                get=$(awk -F'[: ]+' '$1 == "GET" { v = $2 } END { print v }' <<<"$out")
                if [ -n "$set" ] && [ -n "$get" ]; then
                    awk -v a="$set" -v b="$get" 'BEGIN { printf "%.0f\n", (a + b) / 2 }' >>"$bf"
                else
                    log "  redis-benchmark failed"
                fi
            done
            stop_server
        fi
    fi
    add_row hiredis_hook req/s "$(median "$sf")" "$(median "$bf")" redis-bench ratio_ge 0.9 \
        ">=0.9x redis-benchmark" "$(count "$sf")" "$(count "$bf")"
}

# ------------------------------------------------------------------ http (wrk)
# HTTP_RUNS runs per side (wrk runs take seconds each); HTTP_SECS seconds per wrk run.
HTTP_RUNS=${BENCH_HTTP_RUNS:-$((RUNS < 3 ? RUNS : 3))}
HTTP_SECS=${BENCH_HTTP_SECS:-5}
SERVER_PORT=

# start_server_port0 CMD...: start CMD (it listens on a port the kernel picks and prints
# "listening on 127.0.0.1:PORT"), set SERVER_PORT from that line.
start_server_port0() {
    [ -x "$1" ] || { log "  missing: $1"; return 1; }
    # A fresh file: the previous server's line must not be read before this one truncates.
    rm -f "$TMP/server.log"
    "$@" >"$TMP/server.log" 2>&1 &
    SERVER_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        SERVER_PORT=$(awk 'match($0, /listening on 127\.0\.0\.1:[0-9]+/) {
            s = substr($0, RSTART, RLENGTH); sub(/.*:/, "", s); print s; exit }' "$TMP/server.log" 2>/dev/null)
        [ -n "$SERVER_PORT" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    log "  server did not start: $* ($(tail -n 1 "$TMP/server.log"))"
    stop_server
    return 1
}

# http_once RPS_FILE P99_FILE PATH SERVER_CMD...: one wrk run against a fresh server;
# appends requests/s and the p99 latency in ms.
http_once() {
    local rf=$1 pf=$2 path=$3; shift 3
    start_server_port0 "$@" || return 0
    local out
    out=$(timeout "$TIMEOUT" wrk -t2 -c100 -d"${HTTP_SECS}s" --latency \
          "http://127.0.0.1:$SERVER_PORT$path" 2>&1)
    stop_server
    local rps p99 errs
    rps=$(awk '$1 == "Requests/sec:" { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { v = $2; m = 1
        if (v ~ /us$/) m = 0.001; else if (v ~ /ms$/) m = 1; else if (v ~ /s$/) m = 1000
        sub(/[a-z]+$/, "", v); print v * m }' <<<"$out")
    errs=$(awk '/Non-2xx|Socket errors/' <<<"$out")
    [ -n "$errs" ] && log "  wrk against $1: $errs"
    if [ -n "$rps" ] && [ -n "$p99" ]; then
        echo "$rps" >>"$rf"
        echo "$p99" >>"$pf"
    else
        log "  wrk failed against $* ($(tail -n 1 <<<"$out"))"
    fi
}

# bench_http NAME PATH: strand's examples/http_server against Go's net/http twin.
bench_http() {
    local name=$1 path=$2 r
    wanted "$name" || wanted http || return 0
    log "== $name (wrk -t2 -c100 -d${HTTP_SECS}s --latency $path)"
    local srps=$TMP/$name.strand gr=$TMP/$name.go sp=$TMP/$name.p99.strand gp=$TMP/$name.p99.go
    local urps=$TMP/$name.uring up=$TMP/$name.p99.uring
    : >"$srps"; : >"$gr"; : >"$sp"; : >"$gp"; : >"$urps"; : >"$up"
    if ! command -v wrk >/dev/null; then
        log "  wrk not installed"
    else
        for ((r = 1; r <= HTTP_RUNS; r++)); do
            http_once "$srps" "$sp" "$path" "$ENV" STRAND_POLLER=epoll "$BUILD/examples/http_server" --port 0
            http_once "$urps" "$up" "$path" "$ENV" STRAND_POLLER=io_uring "$BUILD/examples/http_server" --port 0
            http_once "$gr" "$gp" "$path" "$GOBIN/http" --port 0
        done
    fi
    log "   medians: strand $(median "$srps") req/s p99 $(median "$sp") ms, go $(median "$gr") req/s p99 $(median "$gp") ms"
    add_row "$name" req/s "$(median "$srps")" "$(median "$gr")" go ratio_ge 1.5 ">=1.5x Go" \
        "$(count "$srps")" "$(count "$gr")"
    add_row "${name}_p99" ms "$(median "$sp")" "$(median "$gp")" go ratio_le 1.0 "p99 <= Go's" \
        "$(count "$sp")" "$(count "$gp")"
    add_row "${name}_uring" req/s "$(median "$urps")" "$(median "$gr")" go ratio_ge 1.5 ">=1.5x Go" \
        "$(count "$urps")" "$(count "$gr")"
    add_row "${name}_uring_p99" ms "$(median "$up")" "$(median "$gp")" go ratio_le 1.0 "p99 <= Go's" \
        "$(count "$up")" "$(count "$gp")"
}

# skynet speedup from 1 to all workers, both sides, from the medians already measured.
skynet_speedup() {
    local s1 sn g1 gn
    s1=$(median "$TMP/skynet_1w.strand" 2>/dev/null); sn=$(median "$TMP/skynet.strand" 2>/dev/null)
    g1=$(median "$TMP/skynet_1w.go" 2>/dev/null); gn=$(median "$TMP/skynet.go" 2>/dev/null)
    [ -e "$TMP/skynet_1w.strand" ] && [ -e "$TMP/skynet.strand" ] || return 0
    local sp gp
    sp=$(awk -v a="$s1" -v b="$sn" 'BEGIN { print (a != "n/a" && b != "n/a" && b > 0) ? a / b : "n/a" }')
    gp=$(awk -v a="$g1" -v b="$gn" 'BEGIN { print (a != "n/a" && b != "n/a" && b > 0) ? a / b : "n/a" }')
    # The goal is on strand's own speedup, so it is written as an absolute ">=" goal.
    awk -v s="$sp" -v g="$gp" 'BEGIN {
        r = (s != "n/a" && g != "n/a" && g > 0) ? s / g : "n/a"
        met = (s == "n/a") ? "n/a" : ((s + 0 >= 1.6) ? "yes" : "no")
        printf "skynet_speedup\tx\t%s\t%s\tgo\t%s\tabs_ge\t1.6\t>=1.6x (1->2 workers)\t%s\t-\t-\n", s, g, r, met
    }' >>"$ROWS"
}

# ------------------------------------------------------------------ report
fmt() { awk -v v="$1" 'BEGIN {
    if (v == "n/a" || v == "") { print "n/a"; exit }
    a = v < 0 ? -v : v
    if (a >= 1000) printf "%.0f\n", v; else if (a >= 10) printf "%.1f\n", v
    else if (a >= 0.1) printf "%.2f\n", v; else printf "%.3f\n", v }'; }

print_table() {
    printf '\n%-16s %-13s %12s %18s %9s  %-24s %s\n' benchmark unit strand baseline ratio goal met
    printf '%s\n' "-------------------------------------------------------------------------------------------------"
    local n u s b bn r gk gv gt met ns nb
    while IFS=$'\t' read -r n u s b bn r gk gv gt met ns nb; do
        local bl
        bl="$(fmt "$b")"
        [ "$b" != "n/a" ] && [ "$bn" != go ] && bl="$bl ($bn)"
        printf '%-16s %-13s %12s %18s %9s  %-24s %s\n' "$n" "$u" "$(fmt "$s")" "$bl" "$(fmt "$r")" "$gt" "$met"
    done <"$ROWS"
    printf '\nmedians of %s runs each (idle_mem: %s, resp: %s, http: %s); ratio = strand / baseline (Go unless named).\n' "$RUNS" "$MEM_RUNS" "$RESP_RUNS" "$HTTP_RUNS"
}

json_num() { [ "$1" = n/a ] && echo null || echo "$1"; }

write_json() {
    local f=$RESULTS/latest.json first=1
    {
        printf '{\n  "generated": "%s",\n  "runs": %s,\n  "resp_runs": %s,\n  "cpus": %s,\n' \
            "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$RUNS" "$RESP_RUNS" "$(nproc)"
        printf '  "kernel": "%s",\n  "build_dir": "%s",\n  "benchmarks": [\n' "$(uname -r)" "$BUILD"
        local n u s b bn r gk gv gt met ns nb
        while IFS=$'\t' read -r n u s b bn r gk gv gt met ns nb; do
            [ $first = 1 ] || printf ',\n'
            first=0
            local m=null
            [ "$met" = yes ] && m=true
            [ "$met" = no ] && m=false
            printf '    {"name": "%s", "unit": "%s", "strand": %s, "baseline": %s, "baseline_name": "%s",' \
                "$n" "$u" "$(json_num "$s")" "$(json_num "$b")" "$bn"
            printf ' "ratio": %s, "goal_kind": "%s", "goal": %s, "goal_text": "%s", "met": %s,' \
                "$(json_num "$r")" "$gk" "$([ "$gk" = none ] && echo null || echo "$gv")" "$gt" "$m"
            printf ' "strand_runs": %s, "baseline_runs": %s}' \
                "$([ "$ns" = - ] && echo null || echo "$ns")" "$([ "$nb" = - ] && echo null || echo "$nb")"
        done <"$ROWS"
        printf '\n  ]\n}\n'
    } >"$f"
    log "wrote $f"
}

# Bar chart on a log scale: for ratio goals, strand/baseline next to the goal ratio; for
# absolute goals, measured/goal next to 1. Below the goal bar is good for "<=" goals.
write_chart() {
    command -v gnuplot >/dev/null || { log "gnuplot missing: no chart"; return 0; }
    local dat=$TMP/chart.dat
    awk -F'\t' '
        $7 == "ratio_le" || $7 == "ratio_ge" { if ($6 != "n/a") printf "\"%s%s\" %s %s\n", $1, ($7 == "ratio_ge" ? " (>=)" : ""), $6, $8 }
        $7 == "abs_le" || $7 == "abs_ge" { if ($3 != "n/a") printf "\"%s/goal%s\" %s 1\n", $1, ($7 == "abs_ge" ? " (>=)" : ""), $3 / $8 }
    ' "$ROWS" >"$dat"
    [ -s "$dat" ] || { log "no data for the chart"; rm -f "$RESULTS/latest.png"; return 0; }
    gnuplot <<EOF 2>"$TMP/gnuplot.err" || log "gnuplot failed: $(head -n 1 "$TMP/gnuplot.err")"
set terminal pngcairo size 1200,600 noenhanced
set output "$RESULTS/latest.png"
set title "strand benchmarks: measured vs goal (medians of $RUNS runs; ratios are strand/Go, or strand/epoll)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set yrange [0.01:*]
set ylabel "ratio (log scale)"
set xtics rotate by -35 left
set grid ytics
set key outside top center horizontal
set bmargin 9
set rmargin 8
plot "$dat" using 2:xtic(1) title "measured" lc rgb "#3b73b9", \
     "" using 3 title "goal (<= unless marked >=)" lc rgb "#e0a030"
EOF
    [ -s "$RESULTS/latest.png" ] && log "wrote $RESULTS/latest.png"
}

# ------------------------------------------------------------------ main
mkdir -p "$RESULTS"
log "strand benchmarks: build dir $BUILD, $RUNS runs each, $(nproc) CPUs"
[ -d "$BIN" ] || log "run.sh: $BIN does not exist: strand columns will be n/a"
build_go
M=$GOBIN/micro

#     name          unit          goal kind  value  goal text                  strand command            Go command
bench switch_raw    ns/switch     abs_le     5      "<=5 ns"                   -- "$BIN/switch_raw"
bench yield         ns/switch     abs_le     15     "<=15 ns"                  -- "$BIN/yield" yield        -- env GOMAXPROCS=1 "$M" yield
bench yield_busy2   ns/switch     none       0      "-"                        -- "$BIN/yield" yield_busy2  -- env GOMAXPROCS=2 "$M" yield_busy2
bench spawn         ns/strand     ratio_le   0.1    "<=0.1x Go"                -- "$BIN/spawn" spawn        -- "$M" spawn
bench spawn_row     ns/strand     ratio_le   0.5    "<=0.5x Go"                -- "$BIN/spawn_row" spawn_row -- "$M" spawn_row
bench first_park    ns/strand     abs_le     1500   "<=1.5 us"                 -- "$BIN/spawn_row" first_park -- "$M" first_park
RUNS_CAP=$MEM_RUNS \
bench idle_mem      bytes/strand  abs_le     4608   "<=4.5 KiB"                -- "$BIN/idle_mem" idle_mem  -- "$M" idle_mem
bench skynet        ms            ratio_le   0.2    "<=0.2x Go"                -- "$BIN/skynet" skynet      -- "$M" skynet
bench skynet_1w     ms            none       0      "-"                        -- "$BIN/skynet" skynet_1w   -- env GOMAXPROCS=1 "$M" skynet_1w
wanted skynet && wanted skynet_1w && skynet_speedup
bench spawn_outside ns/spawn      none       0      "-"                        -- "$BIN/spawn_outside" spawn_outside -- "$M" spawn_outside
bench pingpong      ns/rtt        ratio_le   0.2    "<=0.2x Go"                -- "$BIN/pingpong" pingpong  -- "$M" pingpong
bench ring          ns/hop        ratio_le   0.2    "<=0.2x Go"                -- "$BIN/ring" ring          -- "$M" ring
bench chan_1p1c     ns/msg        ratio_le   0.333  "<=0.33x Go (3x faster)"   -- "$BIN/chan" chan_1p1c     -- "$M" chan_1p1c
bench chan_2x2      ns/msg        ratio_le   0.333  "<=0.33x Go (3x faster)"   -- "$BIN/chan" chan_2x2      -- env GOMAXPROCS=2 "$M" chan_2x2
bench mailbox_rtt   ns/rtt        ratio_le   0.3    "<=0.3x Go"                -- "$BIN/mailbox_rtt" mailbox_rtt -- "$M" mailbox_rtt
bench timer_churn   ms            none       0      "-"                        -- "$BIN/timer_churn" timer_churn -- "$M" timer_churn
bench cancel_latency ns           none       0      "-"                        -- "$BIN/cancel" cancel_latency -- "$M" cancel_latency
bench monitor_rtt   ns/rtt        none       0      "-"                        -- "$BIN/cancel" monitor_rtt -- "$M" monitor_rtt
bench select2       ns/select     ratio_le   0.5    "<=0.5x Go"                -- "$BIN/select" select2     -- "$M" select2
bench select_fanin8 ns/msg        ratio_le   0.5    "<=0.5x Go"                -- "$BIN/select" select_fanin8 -- "$M" select_fanin8
bench handoff       us            none       0      "-"                        -- "$BIN/handoff" handoff    -- "$M" handoff
bench maybe_yield   ns/call       none       0      "-"                        -- "$BIN/handoff" maybe_yield
bench_echo
bench_resp "" -c 50 -n 200000
bench_resp _p16 -c 50 -n 1000000 -P 16
bench_resp _c1000 -c 1000 -n 200000
bench_hook
bench_http http_plaintext /
bench_http http_json /json

print_table
write_json
write_chart
exit 0
