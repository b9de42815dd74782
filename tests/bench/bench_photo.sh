#!/usr/bin/env bash
# bench_photo.sh - end-to-end /predict time of a 12 MP phone photo (issue 18): the 4032x3024
# JPEG of build/bench/bench_decode (quality 90, grey gradient, dark stroke, noise) posted with
# curl to a digits-server with one thread, pinned to one core. One JSON line on stdout: the
# median of 11 requests after one warm-up (curl's time_total: upload, decode, predict, answer).
#
#   tests/bench/bench_photo.sh            (after make and make build/bench/bench_decode)
#
# Environment: DIGITS_BUILD (build).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${DIGITS_BUILD:-build}
[[ $build = /* ]] || build=$root/$build
die() { echo "bench_photo: $*" >&2; exit 1; }
[ -x "$build/digits-server" ] || die "$build/digits-server not built (make)"
[ -x "$build/bench/bench_decode" ] || die "$build/bench/bench_decode not built"
model=$root/models/mnist-cnn.model
[ -f "$model" ] || die "$model missing"

tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

"$build/bench/bench_decode" --write "$tmp/photo.jpg"
core=$(( $(nproc) - 1 ))
taskset -c "$core" "$build/digits-server" --port 0 --quiet --threads 1 --model "$model" \
    2>"$tmp/log" &
pid=$!
for _ in $(seq 100); do grep -q listening "$tmp/log" && break; sleep 0.05; done
port=$(grep -o 'http://127.0.0.1:[0-9]*' "$tmp/log" | head -1 | sed 's/.*://')
[ -n "$port" ] || die "server did not start: $(cat "$tmp/log")"
url=http://127.0.0.1:$port/predict

times=()
for i in $(seq 0 11); do
    t=$(curl -sf -o "$tmp/answer" -w '%{time_total}' -H 'Content-Type: image/jpeg' \
        --data-binary @"$tmp/photo.jpg" "$url") || die "request failed: $(cat "$tmp/answer")"
    [ "$i" = 0 ] || times+=("$t")
done
echo "bench_photo: last answer: $(cat "$tmp/answer")" >&2
ms=$(printf '%s\n' "${times[@]}" | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", v[(NR + 1) / 2] * 1000 }')
bytes=$(stat -c %s "$tmp/photo.jpg")
met=$(awk -v v="$ms" 'BEGIN { print v < 100 ? "true" : "false" }')
echo "{\"bench\":\"server\",\"case\":\"photo_4032x3024_q90\",\"bytes\":$bytes,\"server_threads\":1,\"metric\":\"predict_ms\",\"value\":$ms,\"target_lt\":100,\"met\":$met}"
