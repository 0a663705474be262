"""Counted checks for the Python test drivers (tests/deploy_nginx.py,
tests/cluster.py): a failure prints one FAIL line, a skip one SKIP line with
its reason, and closing() is the `NAME: N passed, N failed, N skipped` line
tests/run.sh reads."""

import socket

counts = {"passed": 0, "failed": 0, "skipped": 0}


def check(ok, what):
    if ok:
        counts["passed"] += 1
    else:
        counts["failed"] += 1
        print("FAIL: " + what, flush=True)


def skip(why):
    counts["skipped"] += 1
    print("SKIP: " + why, flush=True)


def closing(name):
    return "%s: %d passed, %d failed, %d skipped" % (name, counts["passed"], counts["failed"], counts["skipped"])


def free_port():
    """A loopback TCP port nobody listens on now (the kernel's pick)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p
