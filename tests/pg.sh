#!/bin/sh
# A throwaway PostgreSQL server for tests (Debian's `postgresql` package):
# initdb into a fresh folder, served on 127.0.0.1 (and a unix socket in the
# folder), trust authentication for one superuser, `qcare`. As root the
# server runs as an unprivileged user (postgres when the package made it,
# else nobody), who owns the folder; PostgreSQL refuses to run as root.
#
#   sh tests/pg.sh check            exit 0 when the server programs are here,
#                                   else print why not and exit 1
#   sh tests/pg.sh create [--fsync] makes and starts a server; prints
#                                   "DIR PORT" (the URL is
#                                   postgresql://qcare@127.0.0.1:PORT/DB);
#                                   fsync is off unless --fsync (tests do not
#                                   test power cuts, and it is slow here)
#   sh tests/pg.sh stop DIR         stops it (fast: clients are disconnected)
#   sh tests/pg.sh start DIR        starts it again on the same port
#   sh tests/pg.sh destroy DIR      stops it at once and removes DIR
#   sh tests/pg.sh createdb DIR DB  makes database DB (no error when it exists)
#
# tests/pgserver.h wraps this for the C tests (and removes the server even
# when the test crashes); shell tests call it directly.
set -u

bindir() {
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && last=$d
    done
    [ -n "${last:-}" ] && echo "$last"
}

# The user the server runs as ("" = this one).
server_user() {
    [ "$(id -u)" != 0 ] && return 0
    if id postgres >/dev/null 2>&1; then echo postgres; else echo nobody; fi
}

# as_user CMD...: runs CMD as the server's user.
as_user() {
    u=$(server_user)
    if [ -z "$u" ]; then "$@"
    elif command -v runuser >/dev/null 2>&1; then runuser -u "$u" -- "$@"
    else setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- "$@"
    fi
}

# A TCP port nobody listens on now (the kernel's pick; without python3, one
# drawn from this shell's pid and the try number $1).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + ($$ * 7919 + $1 * 104729) % 40000))
}

ctl_start() {
    dir=$1
    port=$(cat "$dir/port")
    as_user "$B/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=$(cat "$dir/fsync")" start >/dev/null
}

B=$(bindir)
cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
check)
    if [ -z "$B" ]; then echo "no PostgreSQL server programs (/usr/lib/postgresql/*/bin/initdb; Debian package postgresql)"; exit 1; fi
    u=$(server_user)
    if [ -n "$u" ] && ! command -v runuser >/dev/null 2>&1 && ! command -v setpriv >/dev/null 2>&1; then
        echo "running as root and neither runuser nor setpriv is here to start PostgreSQL as $u"; exit 1
    fi
    exit 0 ;;
create)
    [ -n "$B" ] || { echo "pg.sh: no PostgreSQL server programs" >&2; exit 1; }
    fsync=off
    [ "${1:-}" = --fsync ] && fsync=on
    dir=$(mktemp -d "${TMPDIR:-/tmp}/qc_pg_XXXXXX") || exit 1
    u=$(server_user)
    [ -n "$u" ] && chown "$u" "$dir"
    chmod 700 "$dir"
    echo "$fsync" > "$dir/fsync"
    if ! as_user "$B/initdb" -D "$dir/data" -U qcare -A trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1; then
        tail -n 20 "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1
    fi
    [ -n "$u" ] && chown "$u" "$dir"/* 2>/dev/null
    # A port picked now may be taken by the time the server binds it: retry.
    for try in 1 2 3 4 5; do
        free_port "$try" > "$dir/port"
        [ -n "$u" ] && chown "$u" "$dir/port"
        if ctl_start "$dir"; then echo "$dir $(cat "$dir/port")"; exit 0; fi
    done
    tail -n 20 "$dir/log" >&2
    rm -rf "$dir"; exit 1 ;;
stop)
    as_user "$B/pg_ctl" -D "$1/data" -m fast -w -t 60 stop >/dev/null ;;
start)
    ctl_start "$1" || { tail -n 20 "$1/log" >&2; exit 1; } ;;
destroy)
    case "$1" in */qc_pg_*) ;; *) echo "pg.sh: refusing to remove $1" >&2; exit 2 ;; esac
    [ -f "$1/data/postmaster.pid" ] && as_user "$B/pg_ctl" -D "$1/data" -m immediate -w -t 60 stop >/dev/null 2>&1
    rm -rf "$1" ;;
createdb)
    out=$("$B/psql" -X -q -h 127.0.0.1 -p "$(cat "$1/port")" -U qcare -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE \"$2\"" 2>&1) || case "$out" in *"already exists"*) ;; *) echo "$out" >&2; exit 1 ;; esac ;;
*)
    echo "usage: sh tests/pg.sh check|create [--fsync]|stop DIR|start DIR|destroy DIR|createdb DIR DB" >&2
    exit 2 ;;
esac
