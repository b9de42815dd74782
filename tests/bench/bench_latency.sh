#!/usr/bin/env bash
# bench_latency.sh - latency of digits-server at fixed request rates (open loop), the way
# serving systems report it, with Debian's h2load (nghttp2-client). One JSON line per figure
# on stdout; h2load's own summaries on stderr.
#
#   tests/bench/bench_latency.sh           (after make; needs h2load, node and MNIST)
#
# For each case (POST /predict with the first MNIST test digit as {"pixels":[784]} JSON and as
# a 28x28 PNG; POST /v2/models/mnist-cnn/infer with it as an FP32 [1,784] tensor):
#  1. the maximum throughput, closed loop: h2load --h1 -c32 for BENCH_SECONDS, after a 1 s
#     warm-up;
#  2. then 25%, 50% and 80% of it at a fixed rate: h2load --h1 --rps, p50/p99/p99.9/max from
#     its per-request log (--log-file), the connection ramp left out.
# The server runs with its default thread count (one per core) and the shipped models (the CNN
# serves), h2load with one thread, all on the same machine.
#
# How the fixed rate is made. h2load's --rps is per connection, and its timer never fires more
# often than every 10 ms (it sends what is due in a burst), so each connection is given at most
# 100 requests/s and the rate comes from many connections (--max-connections-per-ip 0 on the
# server for that). Their timers start when they connect, one per millisecond (-r1
# --rate-period=1ms), and the count is chosen so that the period of each (count / rate) is
# N + 0.382 ms: the connections' phases then fall on a golden-ratio sequence, evenly spread,
# and requests arrive about 1/rate apart instead of in bursts. Each connection has one request
# in flight (HTTP/1.1, no pipelining): a request is only held back if the one before it on its
# connection took longer than the period (> 10 ms); latency_max_ms shows whether that happened.
#
# Targets (issue 20), default thread count: p99 < 1 ms at 50% and < 2 ms at 80% of the maximum.
# Environment: DIGITS_BUILD (build), MNIST_DIR (data/mnist), BENCH_SECONDS (10).
set -euo pipefail

. "$(dirname "$0")/server_bench.sh"
bench_init bench_latency h2load
[ -f "$root/models/mnist-cnn.model" ] || die "models/mnist-cnn.model not found"
bench_bodies
bench_start_server --max-connections-per-ip 0 \
    --model "$root/models/mnist-cnn.model" --model "$root/models/mnist-mlp.model"

# check NAME PATH TYPE BODY: one request answered 200, else the bench stops here
check() {
    curl -sf -H "Content-Type: $3" --data-binary @"$4" "$base$2" >/dev/null ||
        die "$1: POST $2 failed: $(curl -s -H "Content-Type: $3" --data-binary @"$4" "$base$2")"
}

# all_2xx OUT: h2load's summary says every request succeeded with a 2xx status
all_2xx() {
    local total ok
    total=$(awk '/^requests:/ { print $2 }' <<<"$1")
    ok=$(awk '/^status codes:/ { print $3 }' <<<"$1")
    [ -n "$total" ] && [ "$total" -gt 0 ] && [ "$total" = "$ok" ] &&
        grep -q " $total succeeded, 0 failed, 0 errored, 0 timeout" <<<"$1"
}

# connections RATE: how many connections carry RATE requests/s (see the top of this file)
connections() {
    awk -v r="$1" 'BEGIN {
        best = 0; bestd = 2
        for (c = int(r / 100) + 1; c <= int(r / 100) + 1 + r / 1000 + 1; c++) {
            p = 1000 * c / r; f = p - int(p); d = f > 0.382 ? f - 0.382 : 0.382 - f
            if (d < bestd) { bestd = d; best = c }
        }
        print best }'
}

# run NAME PATH TYPE BODY -> JSON lines
run() {
    local name=$1 path=$2 type=$3 body=$4 out max
    check "$name" "$path" "$type" "$body"
    out=$(h2load --h1 -t1 -c32 -D "$secs" --warm-up-time=1 -d "$body" -H "Content-Type: $type" \
        "$base$path" 2>&1)
    echo "$out" >&2
    all_2xx "$out" || die "$name: not every answer was a 2xx at full load"
    max=$(awk '/^finished in/ { sub(/,/, "", $4); print int($4) }' <<<"$out")
    [ -n "$max" ] && [ "$max" -gt 0 ] || die "$name: no throughput figure from h2load"
    local tag="\"bench\":\"latency\",\"case\":\"$name\",\"path\":\"$path\""
    figure "$tag,\"load\":\"max\",\"h2load\":\"--h1 -c32 -D $secs\"" requests_per_second "$max"
    for pct in 25 50 80; do
        local rate=$((max * pct / 100)) c rps n ramp_us
        c=$(connections "$rate")
        rps=$(awk -v r="$rate" -v c="$c" 'BEGIN { printf "%.4f", r / c }')
        n=$((rate * secs))
        rm -f "$tmp/h2.log"
        out=$(h2load --h1 -t1 -c"$c" -r1 --rate-period=1ms --rps="$rps" -n "$n" \
            --log-file="$tmp/h2.log" -d "$body" -H "Content-Type: $type" "$base$path" 2>&1)
        echo "$out" >&2
        all_2xx "$out" || die "$name at $pct%: not every answer was a 2xx"
        # leave out the ramp: requests started before the last connection was made
        ramp_us=$(( (c + 10) * 1000 ))
        local stats
        local span stats
        sort -n "$tmp/h2.log" | awk -v ramp="$ramp_us" -v span="$tmp/span" '
            NR == 1 { t0 = $1 } $1 - t0 >= ramp { print $3; if (!n++) first = $1; last = $1 }
            END { print n, last - first > span }' | sort -n >"$tmp/lat"
        read -r count span <"$tmp/span"
        [ "$count" -ge 100 ] || die "$name at $pct%: too few requests in h2load's log"
        stats=$(awk -v n="$count" -v span="$span" '{ v[NR] = $1 } END {
            printf "%d %.1f %.3f %.3f %.3f %.3f\n", n, (n - 1) * 1e6 / span,
                v[int(n * 0.50)] / 1000, v[int(n * 0.99)] / 1000, v[int(n * 0.999)] / 1000,
                v[n] / 1000 }' "$tmp/lat")
        read -r count achieved p50 p99 p999 pmax <<<"$stats"
        local t="$tag,\"load\":\"${pct}%\",\"target_rps\":$rate,\"connections\":$c,\"requests\":$count"
        figure "$t" requests_per_second "$achieved"
        figure "$t" latency_p50_ms "$p50"
        case $pct in
        50) figure "$t" latency_p99_ms "$p99" lt 1 ;;
        80) figure "$t" latency_p99_ms "$p99" lt 2 ;;
        *) figure "$t" latency_p99_ms "$p99" ;;
        esac
        figure "$t" latency_p999_ms "$p999"
        figure "$t" latency_max_ms "$pmax"
    done
}

run json28 /predict application/json "$tmp/body.json"
run png28 /predict image/png "$tmp/body.png"
run v2infer /v2/models/mnist-cnn/infer application/json "$tmp/body.v2.json"
