#!/bin/sh
# Checks what the browser test (tests/browser) needs: Chromium, Node.js 18 or
# newer with npm, and the pinned playwright-core in tests/browser/node_modules.
# Installs the missing Debian packages with apt-get when run as root, otherwise
# prints the command to run and exits 1. Quiet when everything is present.
#
# Node.js counts when `node` and `npm` are on PATH, whichever package brought
# them: NodeSource's nodejs bundles npm and conflicts with Debian's npm, so
# asking dpkg for "npm" would demand an impossible install. A Chromium given
# in $CHROMIUM counts instead of the chromium package.
cd "$(dirname "$0")/.." || exit 1

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=""
if [ -n "$CHROMIUM" ]; then
    [ -x "$CHROMIUM" ] || { echo "browser-deps: CHROMIUM=$CHROMIUM is not an executable file" >&2; exit 1; }
elif ! installed chromium; then
    missing="$missing chromium"
fi
command -v node >/dev/null 2>&1 || installed nodejs || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || installed npm || missing="$missing npm"
# Emoji and CJK glyphs in the screenshots; the test passes without them.
fonts=""
for p in fonts-noto-color-emoji fonts-wqy-microhei; do
    installed "$p" || fonts="$fonts $p"
done

if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "browser-deps: installing$missing$fonts" >&2
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing $fonts) >&2 || {
            echo "browser-deps: apt-get install failed for:$missing$fonts" >&2; exit 1; }
    else
        echo "browser-deps: missing Debian packages:$missing" >&2
        echo "browser-deps: run: sudo apt-get install -y$missing$fonts" >&2
        exit 1
    fi
elif [ -n "$fonts" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $fonts) >/dev/null 2>&1 ||
        echo "browser-deps: note: could not install$fonts (screenshots will lack emoji/CJK glyphs)" >&2
fi

# playwright-core 1.61 is the last release that runs on Node.js 18 (Debian 12's).
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
    echo "browser-deps: Node.js $(node --version) is too old; the browser test needs 18 or newer" >&2
    exit 1
fi

# npm ci when playwright-core is missing or is not the version package.json pins.
cd tests/browser || exit 1
if ! node -e '
    const fs = require("fs");
    const want = JSON.parse(fs.readFileSync("package.json", "utf8")).dependencies["playwright-core"];
    const have = JSON.parse(fs.readFileSync("node_modules/playwright-core/package.json", "utf8")).version;
    process.exit(want === have ? 0 : 1);' 2>/dev/null; then
    npm ci --no-audit --no-fund --loglevel=error >/dev/null || {
        echo "browser-deps: npm ci failed in tests/browser (is the npm registry reachable?)" >&2; exit 1; }
fi
exit 0
