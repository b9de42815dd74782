#!/usr/bin/env bash
# Installs what digits needs to build and test, with apt-get (as root, or through sudo), and
# the pinned npm test dependencies (playwright-core, which drives the system Chromium).
# Idempotent: installs only what is missing.
set -euo pipefail

packages=(gcc make pkg-config curl libmicrohttpd-dev libcjson-dev libstb-dev libcriterion-dev
          zlib1g-dev libturbojpeg0-dev libexif-dev libsqlite3-dev fonts-dejavu-core nodejs npm chromium wrk
          clang libclang-rt-14-dev cppcheck valgrind nghttp2-client haproxy systemd sqlite3)

missing=()
for p in "${packages[@]}"; do
    # Node and npm may come from outside Debian (the machine image ships its own); a Debian
    # npm would then conflict with them, so a working command counts as installed.
    case $p in
    nodejs) command -v node >/dev/null && continue ;;
    npm) command -v npm >/dev/null && continue ;;
    esac
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
        sudo=sudo
    fi
    echo "deps: apt-get install ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "deps: Debian packages already installed"
fi

# Browser-test driver, pinned by tests/package-lock.json; never downloads a browser.
if [ -f tests/package-lock.json ]; then
    # Installed again whenever the lock file changed since the last install (a stamp holds
    # its hash), so a package added to tests/package.json reaches every machine.
    lock_sum=$(sha256sum tests/package-lock.json | cut -d' ' -f1)
    stamp=tests/node_modules/.digits-lock-sha256
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
        echo "deps: npm ci (tests/)"
        PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests --no-audit --no-fund --loglevel=error
        echo "$lock_sum" > "$stamp"
    else
        echo "deps: npm test packages already installed"
    fi
fi
