#!/bin/sh
# Fills in the nginx templates for a set of qcare replicas:
#   sh deploy/nginx/render.sh DIR LISTEN REPLICA...
# writes DIR/qcare.conf (qcare.conf with @LISTEN@ and one server line per
# REPLICA) and DIR/nginx.conf (standalone.conf with @PREFIX@ = DIR), and
# makes DIR/tmp. DIR must be an absolute path without spaces. Then:
#   nginx -p DIR -e DIR/error.log -c DIR/nginx.conf
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 3 ]; then
    echo "usage: sh deploy/nginx/render.sh DIR LISTEN REPLICA... (e.g. /tmp/lb 127.0.0.1:8080 127.0.0.1:8081)" >&2
    exit 2
fi
dir=$1; listen=$2; shift 2
case "$dir" in
/*) ;;
*) echo "render: DIR must be an absolute path (nginx reads it from its own working folder)" >&2; exit 2 ;;
esac
case "$dir$listen$*" in
*[!A-Za-z0-9_./:\[\]\ -]*) echo "render: unexpected characters in '$dir', '$listen' or the replicas" >&2; exit 2 ;;
esac
mkdir -p "$dir/tmp" || exit 1
# (comment lines stay as they are: they name the placeholders)
awk -v listen="$listen" -v ups="$*" '
    /^[ \t]*#/ { print; next }
    /@UPSTREAM@/ {
        n = split(ups, u, " ")
        for (i = 1; i <= n; i++) { line = $0; sub(/@UPSTREAM@/, u[i], line); print line }
        next
    }
    { gsub(/@LISTEN@/, listen); print }
' "$here/qcare.conf" > "$dir/qcare.conf" || exit 1
sed "s|@PREFIX@|$dir|g" "$here/standalone.conf" > "$dir/nginx.conf" || exit 1
