#!/bin/sh
# Checks the Debian packages qcare builds against; installs the missing ones
# with apt-get when run as root, otherwise prints the command to run.
#   sh scripts/deps.sh             the native build
#   sh scripts/deps.sh arm64-test  the ARM64 cross compiler, qemu and the arm64
#                                  engine packages (the emulated tests)
#   sh scripts/deps.sh arm64       the same and every arm64 package the qcare
#                                  binary links (make CROSS=aarch64-linux-gnu-)
#   sh scripts/deps.sh fuzz        also clang and its libFuzzer and sanitizer
#                                  runtimes (make fuzz; the normal build stays on cc)
#   sh scripts/deps.sh test        also what the tests start: the PostgreSQL
#                                  server (test_records), nginx and python3-yaml
#                                  (tests/deploy.sh)
engine="libpcre2-dev libutf8proc-dev libjansson-dev"
app="libssl-dev libcurl4-openssl-dev libmicrohttpd-dev libedit-dev libsqlite3-dev libpq-dev"
# The records tests start a PostgreSQL server of their own (tests/pg.sh):
# the native build's tests only (make test runs `deps.sh test`).
server="postgresql"
arch=
case "${1:-}" in
"") pkgs="pkg-config $engine $app" ;;
fuzz) pkgs="pkg-config $engine $app clang libclang-rt-14-dev" ;;
test) pkgs="pkg-config $engine $app $server nginx python3-yaml" ;;
arm64-test) arch=arm64; pkgs="pkg-config gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static" ;;
arm64) arch=arm64; pkgs="pkg-config gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static" ;;
*) echo "deps: unknown argument '$1' (none, fuzz, test, arm64-test or arm64)" >&2; exit 2 ;;
esac
if [ -n "$arch" ]; then
    for p in $engine; do pkgs="$pkgs $p:$arch"; done
    [ "$1" = arm64 ] && for p in $app; do pkgs="$pkgs $p:$arch"; done
fi
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps: installing$missing"
    if [ -n "$arch" ] && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
        dpkg --add-architecture "$arch" || { echo "deps: dpkg --add-architecture $arch failed" >&2; exit 1; }
    fi
    log=${TMPDIR:-/tmp}/qcare-deps.log
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing) >"$log" 2>&1 || {
        tail -n 20 "$log" >&2; echo "deps: apt-get install failed for:$missing (log: $log)" >&2; exit 1; }
else
    echo "deps: missing Debian packages:$missing" >&2
    [ -n "$arch" ] && echo "deps: run: sudo dpkg --add-architecture $arch && sudo apt-get update" >&2
    echo "deps: run: sudo apt-get install -y$missing" >&2
    exit 1
fi
