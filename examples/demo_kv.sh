#!/usr/bin/env bash
# demo_kv.sh BUILD_DIR - examples/kv_server (strand, one strand per connection) against
# redis-server, measured the same way with redis-benchmark, printed side by side.
#
# Starts kv_server on a free loopback port, runs `redis-benchmark -t set,get -c 50` for a few
# seconds, then does the same against `redis-server --port P --save '' --appendonly no`,
# prints both and stops both (also on Ctrl-C or an error). `make demo` calls this.
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

free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$(( 20000 + RANDOM % 40000 ))
        if port_is_free "$p"; then echo "$p"; return 0; fi
    done
    return 1
}

wait_for_port() {
    for _ in $(seq 1 100); do
        port_is_free "$1" || return 0
        sleep 0.05
    done
    echo "demo_kv: nothing listens on port $1" >&2
    return 1
}

# "SET: 123.45 requests per second, p50=..." -> "SET 123.45 0.367"
bench() {
    redis-benchmark -p "$1" -t set,get -c 50 -n "$REQUESTS" -P "$PIPELINE" -q 2>/dev/null |
        tr '\r' '\n' | grep 'requests per second' |
        sed -E 's/^ *([A-Z]+): ([0-9.]+) requests per second(, p50=([0-9.]+) msec)?.*/\1 \2 \4/'
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
echo "demo_kv: strand kv_server on port $kv_port: redis-benchmark -t set,get -c 50 -n $REQUESTS -P $PIPELINE ..."
bench "$kv_port" >"$tmp/kv.res"
kill "$kv_pid"; wait "$kv_pid" 2>/dev/null || true; kv_pid=""

# ---------------------------------------------------------------- redis-server
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --logfile "$tmp/redis.log" &
redis_pid=$!
wait_for_port "$redis_port"
redis_version=$(redis-server --version | sed -E 's/.*v=([0-9.]+).*/\1/')
echo "demo_kv: redis-server $redis_version on port $redis_port: the same benchmark ..."
bench "$redis_port" >"$tmp/redis.res"
kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true; redis_pid=""

# ---------------------------------------------------------------- side by side
field() { awk -v t="$2" -v c="$3" '$1 == t { print $c }' "$1"; }
echo
printf '%-6s %26s %26s\n' "" "strand kv_server" "redis-server $redis_version"
for t in SET GET; do
    printf '%-6s %16s req/s      %16s req/s\n' "$t" \
        "$(field "$tmp/kv.res" "$t" 2)" "$(field "$tmp/redis.res" "$t" 2)"
    printf '%-6s %16s ms p50     %16s ms p50\n' "" \
        "$(field "$tmp/kv.res" "$t" 3)" "$(field "$tmp/redis.res" "$t" 3)"
done
echo
for t in SET GET; do
    kv=$(field "$tmp/kv.res" "$t" 2); rd=$(field "$tmp/redis.res" "$t" 2)
    if [ -n "$kv" ] && [ -n "$rd" ]; then
        awk -v t="$t" -v kv="$kv" -v rd="$rd" 'BEGIN {
            r = kv / rd
            printf "%s: strand kv_server served %.0f requests per second, redis-server %.0f: ", t, kv, rd
            if (r >= 1) printf "strand was %.2f times as fast.\n", r
            else printf "strand reached %.0f%% of redis-server.\n", r * 100 }'
    fi
done
echo "(50 clients over loopback on this machine; both servers ran alone, one after the other.)"
