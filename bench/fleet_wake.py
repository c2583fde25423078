#!/usr/bin/python3
"""bench/fleet_wake.py — wake-up latency of an agent's long poll, for
bench/fleet: the agent waits on bastion POLL (GET /agent/v1/jobs?wait=30
over mutual TLS), a job for it is made through bastion MAKE's admin
socket, and the time from that request to the poll's answer is taken;
the job is then answered (refused) so that the next poll waits again.

  fleet_wake.py AGENT_DIR POLL_PORT POLL_METRICS_SOCK MAKE_SOCK TARGET N

Prints "median MS p90 MS max MS" over N wake-ups. The poll is sent and
bastion POLL's waiting count is seen to rise before the job is made."""
import http.client
import json
import os
import socket
import ssl
import statistics
import sys
import time


class Unix(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("admin", timeout=30)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def admin(sock, method, path, body=None):
    c = Unix(sock)
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"Content-Type": "application/json"} if body is not None else {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def waiting(sock):
    _, text = admin(sock, "GET", "/api/v1/metrics")
    for line in text.decode().splitlines():
        if line.startswith("bastion_http_waiting "):
            return int(line.split()[1])
    raise SystemExit("no bastion_http_waiting metric")


def connect(ctx, port):
    """A TLS connection to bastion PORT; tried again for a while when
    refused or reset: a bastion holding as many connections as its open
    files allow refuses more until some close, and an agent tries again."""
    for attempt in range(40):
        try:
            raw = socket.create_connection(("127.0.0.1", int(port)), timeout=60)
            return ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        except (ConnectionError, ssl.SSLError):
            if attempt == 39:
                raise
            time.sleep(0.5)


def main():
    agent, port, poll_sock, make_sock, target, n = sys.argv[1:7]
    ctx = ssl.create_default_context(cafile=os.path.join(agent, "ca.pem"))
    ctx.load_cert_chain(os.path.join(agent, "cert.pem"), os.path.join(agent, "key.pem"))
    lat = []
    for _ in range(int(n)):
        before = waiting(poll_sock)
        s = connect(ctx, port)
        s.sendall(b"GET /agent/v1/jobs?wait=30 HTTP/1.1\r\nHost: b\r\n"
                  b"Connection: close\r\n\r\n")
        deadline = time.time() + 20
        while waiting(poll_sock) <= before and time.time() < deadline:
            time.sleep(0.01)
        t0 = time.monotonic()
        st, body = admin(make_sock, "POST", "/api/v1/jobs",
                         {"target": target, "kind": "exec", "args": {"argv": ["true"]}})
        if st != 201:
            raise SystemExit("job not made: %d %s" % (st, body[:200]))
        reply = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
        lat.append((time.monotonic() - t0) * 1000)
        s.close()
        jid = json.loads(body)["id"]
        if b'"id":%d' % jid not in reply.replace(b" ", b""):
            raise SystemExit("the poll was answered without the job: %r" % reply[:300])
        # Answer it, so that the next poll waits.
        s = connect(ctx, port)
        res = json.dumps({"status": "refused", "error": "bench"}).encode()
        s.sendall(b"POST /agent/v1/jobs/%d/result HTTP/1.1\r\nHost: b\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n"
                  b"Connection: close\r\n\r\n%s" % (jid, len(res), res))
        while s.recv(65536):
            pass
        s.close()
    lat.sort()
    print("median %.1f p90 %.1f max %.1f" % (statistics.median(lat),
                                            lat[int(len(lat) * 0.9) - 1 if len(lat) >= 10 else -1],
                                            lat[-1]))


if __name__ == "__main__":
    main()
