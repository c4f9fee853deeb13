#!/usr/bin/env bash
# Installs what imgate needs to build, run and test, from Debian packages
# (and, for the test clients only, the npm registry). Safe to re-run: it only
# installs what is missing. Works as root or as a user with sudo.
set -euo pipefail

BUILD_PKGS="build-essential cmake pkg-config libuv1-dev libssl-dev libjansson-dev
  libyaml-dev zlib1g-dev libhttp-parser-dev libcmocka-dev libhiredis-dev libgrpc-dev
  libprotobuf-c-dev protobuf-c-compiler liblmdb-dev"
TEST_PKGS="python3 python3-websockets nodejs npm chromium clang libclang-rt-14-dev valgrind openssl redis-server redis-sentinel nginx"

want="$BUILD_PKGS"
[ "${1:-}" = "test" ] && want="$want $TEST_PKGS"

missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# node may come from outside Debian (e.g. a preinstalled /usr/bin/node): keep it.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=$(echo "$missing" | tr ' ' '\n' | grep -vx -e nodejs -e npm | tr '\n' ' ')
fi

if [ -n "${missing// /}" ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "deps: need root or sudo to install:$missing" >&2; exit 1; }
    SUDO="sudo"
  fi
  echo "deps: installing:$missing"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi

if [ "${1:-}" = "test" ]; then
  here=$(cd "$(dirname "$0")/.." && pwd)
  if [ ! -d "$here/tests/js/node_modules/ws" ] || [ ! -d "$here/tests/js/node_modules/playwright-core" ]; then
    echo "deps: installing npm test clients (tests/js)"
    (cd "$here/tests/js" && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
