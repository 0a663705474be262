#!/bin/sh
# Checks the Debian packages qcare builds against; installs the missing ones
# with apt-get when run as root, otherwise prints the command to run.
# `deps.sh fuzz`: also clang and its libFuzzer and sanitizer runtimes, which
# only the fuzz targets need (`make fuzz`; the normal build stays on cc).
pkgs="pkg-config libpcre2-dev libutf8proc-dev libjansson-dev libssl-dev libcurl4-openssl-dev libmicrohttpd-dev libedit-dev libsqlite3-dev"
[ "${1:-}" = fuzz ] && pkgs="$pkgs clang libclang-rt-14-dev"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps: installing$missing"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing) >&2 || {
        echo "deps: apt-get install failed for:$missing" >&2; exit 1; }
else
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: run: sudo apt-get install -y$missing" >&2
    exit 1
fi
