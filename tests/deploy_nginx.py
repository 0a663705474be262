"""Checks what deploy/nginx/qcare.conf promises, against scripted upstreams
(tests/deploy.sh runs this; it needs nginx and Python 3 only):

  python3 tests/deploy_nginx.py ROOT WORKDIR [RUNAS...]

ROOT is the source tree, WORKDIR an empty folder for nginx, RUNAS a command
prefix that runs nginx as an unprivileged user (setpriv ...) or nothing.

1. Unbuffered streams: an upstream sends its answer's head and one SSE
   event, then each further event only once the test has seen the one
   before through nginx. So every event must reach the client while the
   upstream still holds the stream open; a client read gives up after
   READ_S seconds (no timing is asserted, the limit only bounds a failure).
   The client sends Accept-Encoding: gzip, as browsers do, so a compressor
   holding bytes back fails the check. (nginx 1.22 also forwards such paced
   events with proxy_buffering on, since it writes what it has whenever the
   upstream pauses; the directive matters for fast streams and slow clients
   and is checked by reading qcare.conf, not here.) The upstream also
   reports the request nginx sent it: HTTP/1.1, no "Connection: close",
   X-Session-Id and X-Forwarded-For passed on.
2. Affinity: without X-Session-Id, requests spread over two replicas (the
   empty header maps to the request id); with one, they stay on one.
3. Retries: behind [refuses connections, answers], every POST is answered
   (never sent to the first, so retried); behind [reads the request and hangs
   up, answers], a POST that reached the first is never resent to the second
   (502 to the client), while a GET is.
Prints one line per failure and `nginx: N passed, N failed, 0 skipped`."""
import os
import socket
import subprocess
import sys
import threading

READ_S = 30.0  # seconds a read may wait before the check counts as failed

passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL: " + what, flush=True)


def read_request(conn):
    """The request head and its body (by Content-Length), or None."""
    data = b""
    while b"\r\n\r\n" not in data:
        b = conn.recv(65536)
        if not b:
            return None
        data += b
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(body) < length:
        b = conn.recv(65536)
        if not b:
            break
        body += b
    return head.decode("latin-1")


class Upstream:
    """A loopback server with one behaviour: "sse" (one event, then waits for
    release), "ok" (answers 200 at once), "drop" (reads the request, closes)."""

    def __init__(self, mode):
        self.mode, self.heads = mode, []
        self.release = [threading.Event(), threading.Event()]
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        try:
            while True:  # keep-alive: several requests per connection
                head = read_request(conn)
                if head is None:
                    return
                self.heads.append(head)
                if self.mode == "drop":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    return  # a reset, like a replica killed mid-request
                if self.mode == "ok":
                    body = b'{"ok":true}'
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                                 % (len(body), body))
                    continue
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
                for i, ev in enumerate((b"data: zero\n\n", b"data: one\n\n", b"data: two\n\n")):
                    if i:
                        self.release[i - 1].wait(2 * READ_S)
                    conn.sendall(b"%x\r\n%s\r\n" % (len(ev), ev))
                conn.sendall(b"0\r\n\r\n")
        except OSError:
            pass
        finally:
            conn.close()


def request(port, method, path, headers=(), body=b""):
    """A raw HTTP/1.1 request; returns (status, response bytes) or (0, b"")."""
    s = socket.create_connection(("127.0.0.1", port), timeout=READ_S)
    try:
        h = "".join(f"{k}: {v}\r\n" for k, v in headers)
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: qcare\r\nConnection: close\r\n{h}"
                  f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except OSError:
        return 0, b""
    finally:
        s.close()
    try:
        return int(data.split(b" ", 2)[1]), data
    except (IndexError, ValueError):
        return 0, data


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def with_nginx(root, work, runas, name, upstreams, fn):
    """Renders the config for these upstream ports, runs nginx, calls fn(port)."""
    d = os.path.join(work, name)
    port = free_port()
    r = subprocess.run(["sh", os.path.join(root, "deploy/nginx/render.sh"), d, f"127.0.0.1:{port}"]
                       + [f"127.0.0.1:{p}" for p in upstreams], capture_output=True, text=True)
    check(r.returncode == 0, f"{name}: render.sh failed: {r.stderr.strip()}")
    if r.returncode:
        return
    if runas:  # the unprivileged user must own its folder
        subprocess.run(["chown", "-R", "nobody:nogroup", d], check=False)
    cmd = runas + ["nginx", "-p", d, "-e", d + "/error.log", "-c", d + "/nginx.conf"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    check(r.returncode == 0, f"{name}: nginx did not start: {r.stderr.strip()}")
    if r.returncode:
        return
    try:
        fn(port)
    finally:
        subprocess.run(runas + ["nginx", "-p", d, "-e", d + "/error.log", "-c", d + "/nginx.conf", "-s", "stop"],
                       capture_output=True)


def sse_check(up):
    def fn(port):
        s = socket.create_connection(("127.0.0.1", port), timeout=READ_S)
        body = b'{"messages":[{"role":"user","content":"hi"}],"stream":true}'
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: qcare\r\nConnection: close\r\n"
                  b"Content-Type: application/json\r\nAccept-Encoding: gzip\r\nX-Session-Id: s-42\r\n"
                  b"Content-Length: %d\r\n\r\n%s"
                  % (len(body), body))
        data = b""

        def read_until(want):
            nonlocal data
            try:
                while want not in data:
                    b = s.recv(65536)
                    if not b:
                        return
                    data += b
            except socket.timeout:
                pass

        # The answer's head with the first event, then one event at a time,
        # each sent only after the client has seen the one before.
        read_until(b"data: zero")
        check(b"data: zero" in data, f"no answer head and first event through nginx: {data[:300]!r}")
        up.release[0].set()
        read_until(b"data: one")
        check(b"data: one" in data, "an SSE event did not reach the client while the upstream held the "
              f"stream open (buffered?): got {data[-300:]!r}")
        check(b"data: two" not in data, "an event arrived before the upstream sent it")
        up.release[1].set()
        read_until(b"\r\n0\r\n\r\n")
        s.close()
        check(b"data: two" in data, f"the rest of the stream did not arrive: {data[-300:]!r}")
        head = up.heads[0] if up.heads else ""
        lines = [ln.lower() for ln in head.split("\r\n")]
        check(lines and lines[0].endswith("http/1.1"),
              f"nginx did not use HTTP/1.1 upstream: {lines[:1]}")
        check("connection: close" not in lines, "nginx asked the upstream to close the connection (no keep-alive)")
        check("x-session-id: s-42" in lines, f"X-Session-Id not passed on: {lines}")
        check(any(ln.startswith("x-forwarded-for: 127.0.0.1") for ln in lines), f"X-Forwarded-For not set: {lines}")
    return fn


def retry_refused_check(good):
    def fn(port):
        got = [request(port, "POST", "/v1/completions", [("X-Session-Id", f"r{i}")], b"{}")[0] for i in range(8)]
        check(all(st == 200 for st in got), f"POSTs behind a refusing replica were not all retried: {got}")
        check(len(good.heads) == 8, f"the answering replica saw {len(good.heads)} of 8 POSTs")
    return fn


def retry_sent_check(drop, good):
    def fn(port):
        # A GET may be resent: it changes nothing. The first one that reaches
        # the hanging-up replica (the hash decides which) must still be 200.
        reached = None
        for i in range(16):
            st, _ = request(port, "GET", "/v1/models", [("X-Session-Id", f"g{i}")])
            if drop.heads:
                reached = st
                break
        check(reached == 200, f"a GET that reached the hanging-up replica was not retried (status {reached})")
        got = []  # (status, reached the hanging-up replica, resent to the other)
        for i in range(16):
            d0, g0 = len(drop.heads), len(good.heads)
            st, _ = request(port, "POST", "/v1/chat/completions", [("X-Session-Id", f"d{i}")], b"{}")
            got.append((st, len(drop.heads) > d0, len(good.heads) > g0))
        sent = [g for g in got if g[1]]
        check(sent, f"no POST reached the hanging-up replica: {got}")
        check(all(st == 502 and not resent for st, _, resent in sent),
              f"a POST sent to a replica that hung up was resent or not 502 (status, reached, resent): {got}")
    return fn


def spread_check(a, b):
    def fn(port):
        # Without X-Session-Id each request hashes on its own random request
        # id: 64 of them all on one of two replicas is a broken
        # configuration, not bad luck (< 1e-9 even for a 70/30 ring).
        got = [request(port, "GET", "/v1/models")[0] for _ in range(64)]
        check(all(st == 200 for st in got), f"requests without X-Session-Id failed: {got}")
        check(len(a.heads) > 0 and len(b.heads) > 0,
              f"requests without X-Session-Id all went to one replica: {len(a.heads)} and {len(b.heads)}")
        # With it, one session stays on one replica.
        a0, b0 = len(a.heads), len(b.heads)
        for _ in range(8):
            request(port, "GET", "/v1/models", [("X-Session-Id", "same")])
        check((len(a.heads) - a0, len(b.heads) - b0) in ((8, 0), (0, 8)),
              f"one X-Session-Id went to both replicas: {len(a.heads) - a0} and {len(b.heads) - b0}")
    return fn


def main():
    root, work, runas = sys.argv[1], sys.argv[2], sys.argv[3:]
    sse = Upstream("sse")
    with_nginx(root, work, runas, "sse", [sse.port], sse_check(sse))
    good = Upstream("ok")
    with_nginx(root, work, runas, "refused", [free_port(), good.port], retry_refused_check(good))
    a, b = Upstream("ok"), Upstream("ok")
    with_nginx(root, work, runas, "spread", [a.port, b.port], spread_check(a, b))
    drop, good2 = Upstream("drop"), Upstream("ok")
    with_nginx(root, work, runas, "sent", [drop.port, good2.port], retry_sent_check(drop, good2))
    print(f"nginx: {passed} passed, {failed} failed, 0 skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
