#!/usr/bin/env bash
# valgrind.sh - the real digits-server under valgrind memcheck with a fixed set of requests.
#   tests/tools/valgrind.sh            (`make valgrind`; about a minute)
#
# Runs build/digits-server (models/mnist-mlp.model, web/, --max-body 65536, 2 threads, a free
# loopback port) under memcheck --leak-check=full --errors-for-leak-kinds=definite
# --error-exitcode=1, then sends with curl: a JSON 28x28, a JSON batch, a PNG, broken JSON,
# a body over --max-body, text/plain, GET / and a static file, a 404, a traversal attempt,
# /healthz, /metrics, /models, a wrong method; SIGHUP (reload a good model, then a corrupt one:
# the old one keeps serving), a request after each; then SIGTERM. Passes when every answer has
# the expected status, the server exits 0 and memcheck reports no error and no definite leak.
# Suppressions (third-party only) in tests/tools/valgrind.supp. Logs: build/valgrind/logs/.
# Needs a build without AVX-512 (valgrind cannot run it): `make valgrind` builds one with
# PORTABLE=1 into build/valgrind/ and passes DIGITS_BUILD=build/valgrind.
# Environment: DIGITS_BUILD (build/valgrind).
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
build=${DIGITS_BUILD:-build/valgrind}
server=$build/digits-server
out=build/valgrind/logs
die() { echo "valgrind.sh: $*" >&2; exit 1; }
command -v valgrind >/dev/null || die "valgrind not found (apt-get install valgrind)"
command -v curl >/dev/null || die "curl not found (apt-get install curl)"
[ -x "$server" ] || die "$server not built (make valgrind builds it)"
[ -f models/mnist-mlp.model ] || die "models/mnist-mlp.model missing"
case $build in */san | san) die "use the plain build: valgrind and ASan do not mix" ;; esac

mkdir -p "$out"
tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
cp models/mnist-mlp.model "$tmp/m.model"

vlog=$out/memcheck.log
slog=$out/server.log
valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,possible \
    --errors-for-leak-kinds=definite --error-exitcode=1 --track-origins=yes \
    --suppressions="$root/tests/tools/valgrind.supp" --log-file="$vlog" \
    "$server" --model "$tmp/m.model" --web web --port 0 --bind 127.0.0.1 --threads 2 \
    --max-body 65536 2>"$slog" &
pid=$!
port=
for _ in $(seq 600); do # memcheck starts slowly: up to 60 s
    port=$(sed -nE 's|.*listening on http://127\.0\.0\.1:([0-9]+).*|\1|p' "$slog" | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$port" ] || die "server did not start: $(cat "$slog")"
url=http://127.0.0.1:$port

failed=0
check() { # expected-status description curl-args...
    local want=$1 what=$2 got
    shift 2
    got=$(curl -s -o "$tmp/body" -w '%{http_code}' --max-time 60 "$@")
    if [ "$got" = "$want" ]; then
        echo "ok   $got $what"
    else
        echo "FAIL $what: expected $want, got $got: $(head -c 300 "$tmp/body")"
        failed=1
    fi
}

zeros=$(printf '0,%.0s' $(seq 783))0
ones=$(printf '0.5,%.0s' $(seq 783))0.5
json='Content-Type: application/json'
check 200 "JSON 28x28" -H "$json" --data-binary "{\"pixels\":[$ones]}" "$url/predict"
check 200 "JSON blank canvas" -H "$json" --data-binary "{\"pixels\":[$zeros]}" "$url/predict"
check 200 "JSON batch of 2" -H "$json" \
    --data-binary "{\"images\":[{\"pixels\":[$ones]},{\"width\":2,\"height\":1,\"pixels\":[1,0]}]}" \
    "$url/predict"
check 200 "PNG upload" -H 'Content-Type: image/png' \
    --data-binary @tests/fuzz/corpus/image/gray8x8.png "$url/predict"
check 400 "broken JSON" -H "$json" --data-binary '{"pixels":[0.1,' "$url/predict"
check 400 "783 pixels" -H "$json" --data-binary "{\"pixels\":[${zeros#0,}]}" "$url/predict"
head -c 100000 /dev/zero >"$tmp/big"
check 413 "body over --max-body" -H 'Content-Type: image/png' --data-binary @"$tmp/big" \
    "$url/predict"
check 415 "text/plain" -H 'Content-Type: text/plain' --data-binary 'seven' "$url/predict"
check 405 "GET /predict" "$url/predict"
check 200 "GET /" "$url/"
check 404 "missing file" "$url/no-such-file.js"
check 404 "traversal" --path-as-is "$url/../Makefile"
check 200 "/healthz" "$url/healthz"
check 200 "/metrics" "$url/metrics"
check 200 "/models" "$url/models"

kill -HUP "$pid"
sleep 3
check 200 "predict after a good reload" -H "$json" --data-binary "{\"pixels\":[$ones]}" "$url/predict"
head -c 5000 /dev/urandom >"$tmp/m.model"
kill -HUP "$pid"
sleep 3
check 200 "predict after a failed reload (old model serves)" -H "$json" \
    --data-binary "{\"pixels\":[$ones]}" "$url/predict"
check 200 "/metrics after reloads" "$url/metrics"
grep -q 'digits_model_reloads_total{result="failed"} 1' "$tmp/body" ||
    { echo "FAIL /metrics does not count the failed reload"; failed=1; }
grep -q 'reload failed' "$slog" || { echo "FAIL the failed reload is not logged"; failed=1; }

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
errors=$(sed -nE 's/.*ERROR SUMMARY: ([0-9]+) errors.*/\1/p' "$vlog" | tail -n 1)
definite=$(sed -nE 's/.*definitely lost: ([0-9,]+) bytes.*/\1/p' "$vlog" | tail -n 1)
possible=$(sed -nE 's/.*possibly lost: ([0-9,]+) bytes.*/\1/p' "$vlog" | tail -n 1)
echo "memcheck: exit $rc, errors ${errors:-?}, definitely lost ${definite:-0} bytes," \
    "possibly lost ${possible:-0} bytes (log: $vlog)"
if [ "$rc" -ne 0 ] || [ "${errors:-1}" != 0 ]; then
    grep -E '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|[0-9,]+ bytes in)' \
        "$vlog" | head -n 20 >&2
    echo "valgrind.sh: FAILED (server exit $rc; see $vlog)" >&2
    exit 1
fi
[ $failed -eq 0 ] || die "an answer had an unexpected status (see above)"
echo "valgrind.sh: clean"
