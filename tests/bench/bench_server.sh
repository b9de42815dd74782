#!/usr/bin/env bash
# bench_server.sh - throughput and latency of digits-server with wrk on loopback, and its peak
# RSS with two models loaded. Prints one JSON line per figure on stdout; details on stderr.
#
#   tests/bench/bench_server.sh            (after make; needs wrk, node and MNIST)
#
# Cases: POST /predict with the first MNIST test digit as {"pixels":[784]} JSON (3 decimals,
# what the page sends) and as a 28x28 PNG; wrk -t2 -c32 for throughput and p50/p99, wrk -t1 -c1
# for single-client latency, with the server at BENCH_THREADS threads and again at 1. Models: models/mnist-mlp.model and models/mnist-cnn.model when they
# exist (the first one serves), otherwise two 784-256-10 MLPs trained here in seconds. Peak
# RSS is read after every model has answered a request.
# Environment: DIGITS_BUILD (build), MNIST_DIR (data/mnist), BENCH_SECONDS (10),
# BENCH_THREADS (server threads, default: cores).
set -euo pipefail

. "$(dirname "$0")/server_bench.sh"
bench_init bench_server wrk
threads=${BENCH_THREADS:-$(nproc)}
lua=$root/tests/bench/post_body.lua

models=()
for m in "$root/models/mnist-mlp.model" "$root/models/mnist-cnn.model"; do
    [ -f "$m" ] && models+=(--model "$m")
done
if [ ${#models[@]} -lt 4 ]; then
    models=()
    for s in 1 2; do
        "$build/digits-train" --hidden 256 --iterations 300 --seed $s --name bench$s \
            --out "$tmp/bench$s.model" --data "$mnist" --no-reports --quiet >&2
        models+=(--model "$tmp/bench$s.model")
    done
fi

bench_bodies

# start_server THREADS: (re)starts the server; sets pid and url.
start_server() {
    bench_start_server --threads "$1" "${models[@]}"
    url=$base/predict
    curl -sf -H 'Content-Type: application/json' --data-binary @"$tmp/body.json" "$url" >/dev/null ||
        die "JSON request failed"
    curl -sf -H 'Content-Type: image/png' --data-binary @"$tmp/body.png" "$url" >/dev/null ||
        die "PNG request failed"
}

# wrk latency figure ("1.23ms", "850.00us", "1.01s") in milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n *= 1; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'; }

# Issue 3's targets (Flask + NumPy on this machine: 3,760 req/s, p99 12 ms, single-client
# p50 0.49 ms): >= 10x the throughput, p99 < 2 ms, single-client p50 <= 0.1 ms, peak RSS
# <= 20 MB with two models (figure, server_bench.sh, prints the target and whether it is met).
# run NAME TYPE BODY THREADS CONNECTIONS -> JSON lines
run() {
    local name=$1 type=$2 body=$3 t=$4 c=$5 out
    BENCH_BODY=$body BENCH_TYPE=$type wrk -t"$t" -c"$c" -d1s -s "$lua" "$url" >/dev/null 2>&1
    out=$(BENCH_BODY=$body BENCH_TYPE=$type wrk -t"$t" -c"$c" -d"${secs}s" --latency -s "$lua" \
        "$url" 2>&1)
    echo "$out" >&2
    grep -q '^non-2xx: 0$' <<<"$out" || die "$name: some answers were not 2xx"
    local rps p50 p99
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
    local tag="\"bench\":\"server\",\"case\":\"$name\",\"wrk\":\"-t$t -c$c -d${secs}s\",\"server_threads\":$server_threads"
    if [ "$c" = 1 ]; then
        figure "$tag" requests_per_second "$rps"
        figure "$tag" latency_p50_ms "$p50" le 0.1
        figure "$tag" latency_p99_ms "$p99"
    else
        figure "$tag" requests_per_second "$rps" ge 37600
        figure "$tag" latency_p50_ms "$p50"
        figure "$tag" latency_p99_ms "$p99" lt 2
    fi
}

server_threads=$threads
start_server "$threads"
run json28 application/json "$tmp/body.json" 2 32
run png28 image/png "$tmp/body.png" 2 32
run json28_single_client application/json "$tmp/body.json" 1 1
run png28_single_client image/png "$tmp/body.png" 1 1
# every model answers once (each builds its inference caches), then the peak RSS
for name in $(curl -sf "http://127.0.0.1:$port/models" |
    node -e 'let s = ""; process.stdin.on("data", d => s += d).on("end", () =>
        console.log(JSON.parse(s).models.map(m => m.name).join(" ")))'); do
    node -e 'const fs = require("fs"); const b = JSON.parse(fs.readFileSync(process.argv[1]));
        b.model = process.argv[2]; fs.writeFileSync(process.argv[3], JSON.stringify(b))' \
        "$tmp/body.json" "$name" "$tmp/body-model.json"
    curl -sf -H 'Content-Type: application/json' --data-binary @"$tmp/body-model.json" "$url" \
        >/dev/null || die "JSON request to model $name failed"
done
hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")

# With wrk's two threads on the same two cores, a server thread per core means four busy
# threads time-sliced by the scheduler, which shows in p99; one server thread leaves wrk a
# core. Both are reported (server_threads tells them apart).
if [ "$threads" != 1 ]; then
    server_threads=1
    start_server 1
    run json28 application/json "$tmp/body.json" 2 32
    run png28 image/png "$tmp/body.png" 2 32
fi

n_models=$(( ${#models[@]} / 2 ))
figure "\"bench\":\"server\",\"case\":\"peak_rss\",\"models\":$n_models,\"server_threads\":$threads" \
    peak_rss_mb "$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k / 1024 }')" le 20
