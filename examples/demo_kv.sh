#!/usr/bin/env bash
# demo_kv.sh BUILD_DIR - examples/kv_server (strand, one strand per connection) against
# redis-server, measured the same way with redis-benchmark, printed side by side.
#
# Starts kv_server on a kernel-chosen loopback port (PORT 0), runs `redis-benchmark -t set,get
# -c 50` for a few seconds, then does the same against `redis-server --port P --save ''
# --appendonly no`, prints both side by side in plain words (as part 6 of `make demo`, after
# examples/demo.c's five) and stops both servers (also on Ctrl-C or an error).
#
# Knobs (environment): DEMO_REQUESTS (default 100000 per test), DEMO_PIPELINE (default 1,
# i.e. no pipelining; e.g. 16 for redis-benchmark -P 16).
set -euo pipefail

BUILD_DIR=${1:?usage: demo_kv.sh BUILD_DIR}
KV="$BUILD_DIR/examples/kv_server"
REQUESTS=${DEMO_REQUESTS:-100000}
PIPELINE=${DEMO_PIPELINE:-1}

for tool in redis-benchmark redis-server; do
    command -v "$tool" >/dev/null || { echo "demo_kv: $tool is not installed (apt-get install redis-tools redis-server)"; exit 1; }
done
[ -x "$KV" ] || { echo "demo_kv: $KV not built (run make first)"; exit 1; }

tmp=$(mktemp -d)
kv_pid="" redis_pid=""
cleanup() {
    [ -n "$kv_pid" ] && kill "$kv_pid" 2>/dev/null && wait "$kv_pid" 2>/dev/null
    [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A port below the kernel's ephemeral range (where client sockets get their ports: one of
# those in TIME_WAIT makes a bind fail with "Address already in use"), not listened on now.
free_port() {
    local p low
    low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
    [ "${low:-0}" -gt 12000 ] || low=32768
    for _ in $(seq 1 200); do
        p=$(( 10000 + RANDOM % (low - 10000) ))
        if port_is_free "$p"; then echo "$p"; return 0; fi
    done
    return 1
}

# wait_for_port PORT PID: true once PORT listens while PID still runs; false when PID exits
# (e.g. someone took the port between free_port and the bind) or after 5 s.
wait_for_port() {
    for _ in $(seq 1 100); do
        kill -0 "$2" 2>/dev/null || return 1
        port_is_free "$1" || { kill -0 "$2" 2>/dev/null; return; }
        sleep 0.05
    done
    return 1
}

# "SET: 123.45 requests per second, p50=..." -> "SET 123.45 0.367"
bench() {
    redis-benchmark -p "$1" -t set,get -c 50 -n "$REQUESTS" -P "$PIPELINE" -q 2>/dev/null |
        tr '\r' '\n' | grep 'requests per second' |
        sed -E 's/^ *([A-Z]+): ([0-9.]+) requests per second(, p50=([0-9.]+) msec)?.*/\1 \2 \4/'
}

# 156739.81 -> 156,740 (empty stays empty)
group() {
    [ -n "$1" ] || return 0
    printf '%.0f\n' "$1" | sed -E ':a; s/^([0-9]+)([0-9]{3})/\1,\2/; ta'
}

# ---------------------------------------------------------------- strand kv_server
"$KV" 0 >"$tmp/kv.out" 2>&1 &
kv_pid=$!
for _ in $(seq 1 100); do
    grep -q listening "$tmp/kv.out" 2>/dev/null && break
    sleep 0.05
done
kv_port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/kv.out")
[ -n "$kv_port" ] || { echo "demo_kv: kv_server did not start:"; cat "$tmp/kv.out"; exit 1; }
redis_version=$(redis-server --version | sed -E 's/.*v=([0-9.]+).*/\1/')
pipe=""
[ "$PIPELINE" = 1 ] || pipe=", $PIPELINE requests per round trip"
echo "6. A real network server, next to Redis."
echo "   examples/kv_server speaks the Redis protocol with one strand per connection."
echo "   redis-benchmark (50 clients, $(group "$REQUESTS") SETs then as many GETs$pipe) measures"
echo "   it, then redis-server $redis_version the same way, one after the other ..."
bench "$kv_port" >"$tmp/kv.res"
kill "$kv_pid" 2>/dev/null || true; wait "$kv_pid" 2>/dev/null || true; kv_pid=""

# ---------------------------------------------------------------- redis-server
# redis-server cannot report a kernel-chosen port (kv_server can: PORT 0 above): pick a free
# one, and if the bind still loses a race, try another.
for _ in 1 2 3; do
    redis_port=$(free_port)
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --logfile "$tmp/redis.log" &
    redis_pid=$!
    wait_for_port "$redis_port" "$redis_pid" && break
    kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; redis_pid=""
done
[ -n "$redis_pid" ] || { echo "demo_kv: redis-server did not start: $(tail -n 2 "$tmp/redis.log")"; exit 1; }
bench "$redis_port" >"$tmp/redis.res"
kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; redis_pid=""

# ---------------------------------------------------------------- side by side
field() { awk -v t="$2" -v c="$3" '$1 == t { print $c }' "$1"; }
echo
printf '   %-4s %22s  %22s\n' "" "strand kv_server" "redis-server $redis_version"
for t in SET GET; do
    printf '   %-4s %16s req/s  %16s req/s\n' "$t" \
        "$(group "$(field "$tmp/kv.res" "$t" 2)")" "$(group "$(field "$tmp/redis.res" "$t" 2)")"
    printf '   %-4s %15s ms p50  %15s ms p50\n' "" \
        "$(field "$tmp/kv.res" "$t" 3)" "$(field "$tmp/redis.res" "$t" 3)"
done
echo
for t in SET GET; do
    kv=$(field "$tmp/kv.res" "$t" 2); rd=$(field "$tmp/redis.res" "$t" 2)
    if [ -n "$kv" ] && [ -n "$rd" ]; then
        awk -v t="$t" -v kv="$kv" -v rd="$rd" 'BEGIN {
            r = kv / rd
            if (r >= 1) printf "   %s: kv_server was %.2f times as fast as redis-server.\n", t, r
            else printf "   %s: kv_server reached %.0f%% of redis-server'"'"'s speed.\n", t, r * 100 }'
    else
        echo "   $t: no figure (redis-benchmark failed; see above)"
    fi
done
echo "   (Over loopback on this machine; each server ran alone. \"p50\" is the median time a"
echo "   request took.)"
