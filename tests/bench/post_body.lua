-- post_body.lua - wrk script: POST the file $BENCH_BODY to $BENCH_PATH (default /predict) with
-- Content-Type $BENCH_TYPE (default application/json). Used by bench_server.sh.
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("BENCH_TYPE") or "application/json"
wrk.path = os.getenv("BENCH_PATH") or "/predict"

-- A benchmark of error answers must never pass for one of predictions: report non-2xx.
function done(summary, latency, requests)
    io.stderr:write(string.format("non-2xx: %d\n", summary.errors.status))
end
