# server_bench.sh - what the shell benchmarks of digits-server share; sourced, not run.
#
#   . "$(dirname "$0")/server_bench.sh"; bench_init NAME TOOL...
#
# bench_init sets root, build, mnist (absolute) and secs (BENCH_SECONDS, default 10) from
# DIGITS_BUILD and MNIST_DIR, checks that TOOL..., node, the server and MNIST are there, and
# makes $tmp, removed (with the server stopped) on exit.

# bench_init NAME TOOL...
bench_init() {
    bench_name=$1
    shift
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    build=${DIGITS_BUILD:-build}
    [[ $build = /* ]] || build=$root/$build
    mnist=${MNIST_DIR:-data/mnist}
    [[ $mnist = /* ]] || mnist=$root/$mnist
    secs=${BENCH_SECONDS:-10}
    local t
    for t in "$@" node; do
        command -v "$t" >/dev/null || die "$t not found (make deps)"
    done
    [ -x "$build/digits-server" ] || die "$build/digits-server not built (make)"
    [ -f "$mnist/t10k-images-idx3-ubyte" ] || die "MNIST not found in $mnist (make data)"
    tmp=$(mktemp -d)
    pid=
    trap bench_cleanup EXIT
}

die() { echo "$bench_name: $*" >&2; exit 1; }

bench_cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }

# bench_bodies: MNIST test digit 0 as {"pixels":[784]} JSON with 3 decimals (what the page
# sends) in $tmp/body.json, as an 8-bit gray PNG in $tmp/body.png, and as an Open Inference
# Protocol infer request (FP32 [1,784], the same values) in $tmp/body.v2.json.
bench_bodies() {
    MNIST_DIR="$mnist" node --input-type=module -e "
import fs from 'node:fs';
import { mnistTest, toUnit, encodePng } from '$root/tests/server/lib.mjs';
const d = mnistTest(1)[0];
fs.writeFileSync('$tmp/body.json', JSON.stringify({ pixels: toUnit(d.pixels) }));
fs.writeFileSync('$tmp/body.png', encodePng(28, 28, 1, Buffer.from(d.pixels)));
fs.writeFileSync('$tmp/body.v2.json', JSON.stringify({ inputs: [{ name: 'pixels', datatype: 'FP32',
  shape: [1, 784], data: toUnit(d.pixels) }] }));
"
}

# bench_start_server ARG...: (re)starts digits-server --port 0 --quiet ARG...; sets pid, port
# and base (http://127.0.0.1:PORT).
bench_start_server() {
    if [ -n "$pid" ]; then kill "$pid"; wait "$pid" 2>/dev/null || true; fi
    "$build/digits-server" --port 0 --quiet "$@" 2>"$tmp/log" &
    pid=$!
    for _ in $(seq 100); do grep -q listening "$tmp/log" && break; sleep 0.05; done
    port=$(grep -o 'http://127.0.0.1:[0-9]*' "$tmp/log" | head -1 | sed 's/.*://')
    [ -n "$port" ] || die "server did not start: $(cat "$tmp/log")"
    base=http://127.0.0.1:$port
}

# figure TAG METRIC VALUE [OP TARGET] -> one JSON line; with a target (OP: ge, lt or le) it
# carries "target_OP" and "met".
figure() {
    local tag=$1 metric=$2 value=$3 op=${4:-} target=${5:-} met
    if [ -z "$op" ]; then
        echo "{$tag,\"metric\":\"$metric\",\"value\":$value}"
        return
    fi
    met=$(awk -v v="$value" -v t="$target" -v op="$op" 'BEGIN {
        ok = op == "ge" ? v >= t : op == "lt" ? v < t : v <= t; print ok ? "true" : "false" }')
    echo "{$tag,\"metric\":\"$metric\",\"value\":$value,\"target_$op\":$target,\"met\":$met}"
}
