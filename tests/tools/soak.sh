#!/usr/bin/env bash
# soak.sh - load test of the real digits-server with wrk on loopback. Usage:
#   tests/tools/soak.sh [DURATION]        (`make soak DURATION=60`; CI runs 10 s)
#
# The server (models/mnist-mlp.model, --quiet, a free port on 127.0.0.1) gets 64 connections
# from `wrk -t2` for a warm-up (DURATION/4, 5..15 s), then for DURATION seconds, with a mix of
# request bodies, per 10 requests: 4 JSON {"pixels": [784]} and 3 PNG 28x28 of MNIST test digit
# 0 (a 7), and 3 invalid ones (broken JSON, 783 pixels, text/plain). The Lua script checks every
# answer: a 200 must predict 7, anything else must be a 4xx (400/413/415).
# Checks, each fatal: the server is alive after the run; zero 5xx (wrk's count and /metrics);
# zero wrong answers and zero unexpected statuses; zero socket errors; as many 200s as valid
# requests sent (within the requests in flight when wrk stops); VmRSS at the end of the run
# less than 10% above the warm-up's peak; open fds (/proc/PID/fd) back to the pre-load count
# within 10 s after the run. Prints one JSON line with the figures; exit 1 when a check fails.
# Environment: DIGITS_BUILD (build), MNIST_DIR (data/mnist), SOAK_CONNECTIONS (64),
# SOAK_THREADS (server threads, default: cores).
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
duration=${1:-${DURATION:-60}}
case $duration in '' | *[!0-9]*) echo "soak: DURATION must be seconds, got '$duration'" >&2; exit 2 ;; esac
build=${DIGITS_BUILD:-build}
mnist=${MNIST_DIR:-data/mnist}
conns=${SOAK_CONNECTIONS:-64}
model=models/mnist-mlp.model
server=$build/digits-server

die() { echo "soak: $*" >&2; exit 1; }
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
command -v node >/dev/null || die "node not found (make deps)"
[ -x "$server" ] || die "$server not built (make)"
[ -f "$model" ] || die "$model missing"
[ -f "$mnist/t10k-images-idx3-ubyte" ] || die "MNIST not found in $mnist (make data)"

tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
# Bodies: MNIST test digit 0 as JSON and as an 8-bit gray PNG (white ink on black, as MNIST).

node - "$mnist" "$tmp" <<'EOF' || die "could not write the request bodies"
const fs = require('fs'), path = require('path'), zlib = require('zlib');
const [dir, out] = process.argv.slice(2);
const img = fs.readFileSync(path.join(dir, 't10k-images-idx3-ubyte'));
const lab = fs.readFileSync(path.join(dir, 't10k-labels-idx1-ubyte'));
if (img.readUInt32BE(0) !== 0x803 || lab.readUInt32BE(0) !== 0x801) throw new Error('bad IDX');
const px = img.subarray(16, 16 + 784);
fs.writeFileSync(path.join(out, 'label'), String(lab[8]));
fs.writeFileSync(path.join(out, 'valid.json'),
  JSON.stringify({ pixels: Array.from(px, (v) => Number((v / 255).toFixed(3))) }));
const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
const crc = (b) => { let c = ~0; for (const x of b) c = crcTable[(c ^ x) & 255] ^ (c >>> 8); return ~c >>> 0; };
const chunk = (type, data) => {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type), data]);
  const c = Buffer.alloc(4); c.writeUInt32BE(crc(td));
  return Buffer.concat([len, td, c]);
};
const ihdr = Buffer.alloc(13);
ihdr.writeUInt32BE(28, 0); ihdr.writeUInt32BE(28, 4); ihdr[8] = 8; ihdr[9] = 0;
const rows = Buffer.alloc(28 * 29);
for (let y = 0; y < 28; y++) px.copy(rows, y * 29 + 1, y * 28, y * 28 + 28);
fs.writeFileSync(path.join(out, 'valid.png'), Buffer.concat([
  Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
  chunk('IDAT', zlib.deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]));
fs.writeFileSync(path.join(out, 'short.json'),
  JSON.stringify({ pixels: Array.from(px.subarray(0, 783), (v) => v / 255) }));
EOF
label=$(cat "$tmp/label")

cat >"$tmp/soak.lua" <<'EOF'
-- wrk script: rotate through the bodies, check every answer, report counts from done().
local dir = os.getenv("SOAK_DIR")
local label = os.getenv("SOAK_LABEL")
local function slurp(name)
    local f = assert(io.open(dir .. "/" .. name, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    local json, png = slurp("valid.json"), slurp("valid.png")
    local bad = {
        wrk.format("POST", "/predict", {["Content-Type"] = "application/json"},
                   '{"pixels": [0.1, 0.2'),
        wrk.format("POST", "/predict", {["Content-Type"] = "application/json"},
                   slurp("short.json")),
        wrk.format("POST", "/predict", {["Content-Type"] = "text/plain"}, "seven"),
    }
    local j = wrk.format("POST", "/predict", {["Content-Type"] = "application/json"}, json)
    local p = wrk.format("POST", "/predict", {["Content-Type"] = "image/png"}, png)
    -- 10 requests: J P J bad P J bad P J bad
    reqs = {j, p, j, bad[1], p, j, bad[2], p, j, bad[3]}
    valid = {true, true, true, false, true, true, false, true, true, false}
    i, sent_valid, sent_invalid = 0, 0, 0
    ok, wrong, rejected, s5xx, other = 0, 0, 0, 0, 0
    want = '"prediction":%s*' .. label .. '[^%d]'
end

function request()
    i = i % #reqs + 1
    if valid[i] then sent_valid = sent_valid + 1 else sent_invalid = sent_invalid + 1 end
    return reqs[i]
end

function response(status, headers, body)
    if status == 200 then
        if body and body:find(want) then ok = ok + 1 else wrong = wrong + 1 end
    elseif status == 400 or status == 413 or status == 415 then
        rejected = rejected + 1
    elseif status >= 500 then
        s5xx = s5xx + 1
    else
        other = other + 1
    end
end

function done(summary, latency, requests)
    local t = {sent_valid = 0, sent_invalid = 0, ok = 0, wrong = 0, rejected = 0, s5xx = 0,
               other = 0}
    for _, th in ipairs(threads) do
        for k in pairs(t) do t[k] = t[k] + (th:get(k) or 0) end
    end
    local e = summary.errors
    io.write(string.format(
        "SOAK requests=%d seconds=%.3f sent_valid=%d sent_invalid=%d ok=%d wrong=%d " ..
        "rejected=%d s5xx=%d other=%d socket_errors=%d timeouts=%d p50_us=%d p99_us=%d\n",
        summary.requests, summary.duration / 1e6, t.sent_valid, t.sent_invalid, t.ok, t.wrong,
        t.rejected, t.s5xx, t.other, e.connect + e.read + e.write, e.timeout,
        latency:percentile(50), latency:percentile(99)))
end
EOF

# ---------------------------------------------------------------------------------------------
# Server

threads_opt=()
[ -n "${SOAK_THREADS:-}" ] && threads_opt=(--threads "$SOAK_THREADS")
"$server" --model "$model" --port 0 --bind 127.0.0.1 --quiet "${threads_opt[@]}" \
    2>"$tmp/server.log" &
pid=$!
port=
for _ in $(seq 100); do
    port=$(sed -nE 's|.*listening on http://127\.0\.0\.1:([0-9]+).*|\1|p' "$tmp/server.log" | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$port" ] || die "server did not start: $(cat "$tmp/server.log")"
url=http://127.0.0.1:$port

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null; }
fds() { find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# http URL [CONTENT-TYPE BODY-FILE]: GET (or POST the file), body on stdout, fails unless 2xx.
# node's fetch rather than curl: node is a test dependency already, curl is not.
http() {
    node -e '
        const [url, type, file] = process.argv.slice(1);
        const opt = { signal: AbortSignal.timeout(5000) };
        if (file) Object.assign(opt, { method: "POST", headers: { "Content-Type": type },
                                       body: require("fs").readFileSync(file) });
        fetch(url, opt).then(async (r) => { process.stdout.write(await r.text());
                                            process.exitCode = r.ok ? 0 : 1; },
                             (e) => { console.error(String(e)); process.exitCode = 1; });
    ' "$@"
}
metrics_5xx() {
    http "$url/metrics" |
        awk '/^digits_http_requests_total\{.*status="5[0-9][0-9]"/ {n += $NF} END {print n + 0}'
}

# One request of each kind by hand first: a server that answers wrongly fails fast and clearly.
answer=$(http "$url/predict" application/json "$tmp/valid.json")
grep -q "\"prediction\": *${label}[^0-9]" <<<"$answer" || die "JSON digit: expected prediction $label, got: $answer"
answer=$(http "$url/predict" image/png "$tmp/valid.png")
grep -q "\"prediction\": *${label}[^0-9]" <<<"$answer" || die "PNG digit: expected prediction $label, got: $answer"

fd_base=$(fds)
warm=$((duration / 4))
[ $warm -lt 5 ] && warm=5
[ $warm -gt 15 ] && warm=15
export SOAK_DIR=$tmp SOAK_LABEL=$label

run_wrk() { # seconds log
    wrk -t2 -c"$conns" -d"$1s" --timeout 5s --latency -s "$tmp/soak.lua" "$url/predict" >"$2" 2>&1
}
# VmRSS sampled every 0.2 s from the start of the warm-up: the baseline is the warm-up's peak
# (glibc's per-thread arenas make RSS jitter by a few MB at this size; a leak grows past it).
(while kill -0 "$pid" 2>/dev/null; do rss >>"$tmp/rss"; sleep 0.2; done) &
sampler=$!
run_wrk "$warm" "$tmp/warm.log" || die "wrk (warm-up) failed: $(cat "$tmp/warm.log")"
rss >>"$tmp/rss"
rss_warm=$(sort -n "$tmp/rss" | tail -n 1)
: >"$tmp/rss"
run_wrk "$duration" "$tmp/wrk.log"
wrk_rc=$?
kill "$sampler" 2>/dev/null
wait "$sampler" 2>/dev/null
rss_end=$(rss)
rss_peak=$( (cat "$tmp/rss"; echo "$rss_end") | sort -n | tail -n 1)

alive=true
kill -0 "$pid" 2>/dev/null && http "$url/healthz" >/dev/null || alive=false
m5xx=$(metrics_5xx)
fd_end=$(fds)
for _ in $(seq 100); do
    [ "$fd_end" -le "$fd_base" ] && break
    sleep 0.1
    fd_end=$(fds)
done

line=$(grep -a '^SOAK ' "$tmp/wrk.log" | tail -n 1)
get() { sed -nE "s/.* $1=([0-9.]+).*/\1/p" <<<" ${line#SOAK }"; }
requests=$(get requests) seconds=$(get seconds) sent_valid=$(get sent_valid)
ok=$(get ok) wrong=$(get wrong) rejected=$(get rejected) s5xx=$(get s5xx) other=$(get other)
sockerr=$(get socket_errors) timeouts=$(get timeouts) p50=$(get p50_us) p99=$(get p99_us)

failures=()
[ $wrk_rc -eq 0 ] && [ -n "$line" ] || failures+=("wrk failed: $(tail -n 5 "$tmp/wrk.log")")
[ "$alive" = true ] || failures+=("server not alive after the run")
[ "${s5xx:-1}" -eq 0 ] || failures+=("$s5xx 5xx answers seen by wrk")
[ "${m5xx:-1}" = 0 ] || failures+=("${m5xx:-?} 5xx answers in /metrics")
[ "${wrong:-1}" -eq 0 ] || failures+=("$wrong 200 answers without prediction $label")
[ "${other:-1}" -eq 0 ] || failures+=("$other answers with an unexpected status")
[ "${sockerr:-1}" -eq 0 ] && [ "${timeouts:-1}" -eq 0 ] ||
    failures+=("socket errors $sockerr, timeouts $timeouts")
# wrk stops with up to one request in flight per connection, never answered
[ -n "$ok" ] && [ $((sent_valid - ok)) -le "$conns" ] ||
    failures+=("valid requests sent ${sent_valid:-?}, answered 200 ${ok:-?}")
growth=$(awk -v a="${rss_warm:-0}" -v b="${rss_end:-0}" 'BEGIN {printf "%.2f", a ? 100 * (b - a) / a : 999}')
awk -v g="$growth" 'BEGIN {exit !(g < 10)}' || failures+=("RSS grew ${growth}% after warm-up")
[ "${fd_end:-999}" -le "$fd_base" ] || failures+=("open fds $fd_end after the run, $fd_base before")

pass=true
[ ${#failures[@]} -eq 0 ] || pass=false
rps=$(awk -v r="${requests:-0}" -v s="${seconds:-0}" 'BEGIN {printf "%.0f", (s > 0) ? r / s : 0}')
printf '{"soak":"digits-server","model":"%s","duration_s":%s,"connections":%d,"requests":%s,' \
    "$(basename "$model" .model)" "$duration" "$conns" "${requests:-0}"
printf '"requests_per_s":%s,"p50_us":%s,"p99_us":%s,"ok_200":%s,"rejected_4xx":%s,' \
    "$rps" "${p50:-0}" "${p99:-0}" "${ok:-0}" "${rejected:-0}"
printf '"wrong_answers":%s,"status_5xx":%s,"metrics_5xx":%s,"other_status":%s,' \
    "${wrong:-0}" "${s5xx:-0}" "${m5xx:-0}" "${other:-0}"
printf '"socket_errors":%s,"timeouts":%s,"rss_kb_warm":%s,"rss_kb_end":%s,"rss_kb_peak":%s,' \
    "${sockerr:-0}" "${timeouts:-0}" "${rss_warm:-0}" "${rss_end:-0}" "$rss_peak"
printf '"rss_growth_pct":%s,"fds_before":%s,"fds_after":%s,"alive":%s,"pass":%s}\n' \
    "$growth" "$fd_base" "$fd_end" "$alive" "$pass"
if [ "$pass" = false ]; then
    printf 'soak: FAILED: %s\n' "${failures[@]}" >&2
    exit 1
fi
