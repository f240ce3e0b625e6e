"""-p: a guest listener made reachable from the host through the publisher, on both
platforms. The guest's servers run until the test closes their stdin."""

import hashlib
import os
import socket
import subprocess
import textwrap
import threading
import time
import urllib.request

import pytest

from ..support import EDGEVISOR

TIMEOUT = 60


def free_port(family=socket.AF_INET, kind=socket.SOCK_STREAM) -> int:
    with socket.socket(family, kind) as s:
        s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        return s.getsockname()[1]


class Guest:
    """`edgevisor do -p ... -- python3 -c SCRIPT` in the background; the script serves until
    its stdin reaches end of file."""

    def __init__(self, platform, publish, script, flags=()):
        args = [*EDGEVISOR, "do", f"--platform={platform}", *flags]
        for spec in publish:
            args += ["-p", spec]
        self.proc = subprocess.Popen([*args, "--", "python3", "-c", textwrap.dedent(script)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)

    def finish(self):
        """End of file on the guest's stdin; its exit status and output."""
        out, err = self.proc.communicate(input="", timeout=TIMEOUT)
        return self.proc.returncode, out, err

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def retry(fn, deadline=30):
    """fn() until it succeeds: until the guest listens, the publisher closes what it accepts."""
    end = time.monotonic() + deadline
    while True:
        try:
            return fn()
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def wait_for_echo(port):
    """Until the guest's echo server on the published port answers."""
    def echo_once():
        with socket.create_connection(("127.0.0.1", port), timeout=20) as c:
            c.sendall(b"ping")
            if c.recv(4) != b"ping":
                raise ConnectionResetError("not yet")

    retry(echo_once)


HTTP_SERVER = """
import http.server, os, socket, sys, threading
class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6 if ':' in '{bind}' else socket.AF_INET
os.chdir('/usr/share')
srv = Server(('{bind}', 8080), http.server.SimpleHTTPRequestHandler)
threading.Thread(target=srv.serve_forever, daemon=True).start()
sys.stdin.read()
"""


@pytest.mark.parametrize("spec,url,bind", [
    ("{port}:8080", "http://127.0.0.1:{port}/", "0.0.0.0"),
    ("127.0.0.1:{port}:8080", "http://127.0.0.1:{port}/", "127.0.0.1"),
    ("[::1]:{port}:8080", "http://[::1]:{port}/", "::"),
    ("{port}:8080", "http://127.0.0.1:{port}/", "::1"),  # an IPv6-only guest listener
])
def test_http_server_published(platform, spec, url, bind):
    port = free_port()
    with Guest(platform, [spec.format(port=port)], HTTP_SERVER.format(bind=bind)) as g:
        def fetch():
            with urllib.request.urlopen(url.format(port=port), timeout=10) as r:
                return r.status, r.read()
        status, body = retry(fetch)
        assert status == 200 and b"Directory listing" in body
        code, out, err = g.finish()
    assert code == 0, err


ECHO = """
import socket, sys, threading
srv = socket.create_server(('127.0.0.1', 9000))
def serve(conn):
    with conn:
        while data := conn.recv(1 << 16):
            conn.sendall(data)
def accept():
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
threading.Thread(target=accept, daemon=True).start()
sys.stdin.read()
"""


def test_bulk_echo_both_ways_with_half_close(platform):
    """8 MiB of random bytes through the publisher and back, three connections at once; the
    client's shutdown(SHUT_WR) must reach the guest, whose close must reach the client."""
    port = free_port()
    payload = os.urandom(8 << 20)
    with Guest(platform, [f"{port}:9000"], ECHO) as g:
        wait_for_echo(port)
        conns = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(3)]
        digests = []

        def send(c):
            c.sendall(payload)
            c.shutdown(socket.SHUT_WR)

        senders = [threading.Thread(target=send, args=(c,)) for c in conns]
        for t in senders:
            t.start()
        for c in conns:
            h, n = hashlib.sha256(), 0
            while data := c.recv(1 << 16):
                h.update(data)
                n += len(data)
            digests.append((n, h.hexdigest()))
            c.close()
        for t in senders:
            t.join()
        code, _, err = g.finish()
    assert digests == [(len(payload), hashlib.sha256(payload).hexdigest())] * 3
    assert code == 0, err


UDP_ECHO = """
import socket, sys, threading
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, {v6only})
s.bind(('{bind}', 9001))
def serve():
    while True:
        data, peer = s.recvfrom(2048)
        s.sendto(data.upper(), peer)
threading.Thread(target=serve, daemon=True).start()
sys.stdin.read()
"""


@pytest.mark.parametrize("bind,v6only", [("::", 0), ("::1", 1)])
def test_udp_published_replies_reach_each_peer(platform, bind, v6only):
    """A dual-stack guest listener hears the publisher on 127.0.0.1; one on ::1 alone
    refuses there, and the publisher moves that peer to ::1 (the first datagram again)."""
    port = free_port(kind=socket.SOCK_DGRAM)
    with Guest(platform, [f"{port}:9001/udp"], UDP_ECHO.format(bind=bind, v6only=v6only)) as g:
        peers = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
        for i, peer in enumerate(peers):
            peer.settimeout(0.5)

            def ask(peer=peer, i=i):
                peer.sendto(b"hello %d" % i, ("127.0.0.1", port))
                return peer.recvfrom(2048)

            data, source = retry(ask)
            assert (data, source) == (b"HELLO %d" % i, ("127.0.0.1", port))
        for peer in peers:
            peer.close()
        code, _, err = g.finish()
    assert code == 0, err


def test_nothing_listening_in_the_guest_closes_the_connection(platform):
    port = free_port()
    with Guest(platform, [f"{port}:9999"], "import sys; sys.stdin.read()") as g:
        for _ in range(3):
            with retry(lambda: socket.create_connection(("127.0.0.1", port), timeout=10)) as c:
                assert c.recv(1) == b""  # accepted on the host, closed: no guest listener
        code, _, err = g.finish()
    assert code == 0, err


def test_port_closed_after_the_sandbox_exits(platform):
    port = free_port()
    with Guest(platform, [f"{port}:9999"], "pass") as g:
        code, _, err = g.finish()
    assert code == 0, err
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)


def test_port_in_use_is_one_line_and_125(platform):
    """A sandbox that cannot be set up as asked exits 125, as the README promises."""
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        r = subprocess.run([*EDGEVISOR, "do", f"--platform={platform}", "-p", f"{port}:80",
                            "--", "true"], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 125
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}:80/tcp" in lines[0], r.stderr
    assert "in use" in lines[0] and "Traceback" not in r.stderr


def test_publisher_is_confined(platform):
    """Seen from the host, the publisher keeps no capability, runs under its own seccomp
    filter with no_new_privs, has an empty root, and is in the guest's network namespace
    but not its pid namespace (so no guest pid names it)."""
    port = free_port()
    with Guest(platform, [f"{port}:9999"], "import sys; print(flush=True); sys.stdin.read()") as g:
        g.proc.stdout.readline()  # the guest runs: the publisher was started before it
        ours = {}  # pid -> (net namespace, NSpid levels, status, root listing)
        parents = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/status") as f:
                    status = dict(line.split(":\t", 1) for line in f if ":\t" in line)
                parents[pid] = status["PPid"].strip()
                ours[pid] = (os.readlink(f"/proc/{pid}/ns/net"), len(status["NSpid"].split()),
                             status, os.listdir(f"/proc/{pid}/root"))
            except (OSError, KeyError):
                continue

        def in_sandbox(pid):
            while pid in parents and pid != "0":
                pid = parents[pid]
                if pid == str(g.proc.pid):
                    return True
            return False

        ours = {pid: v for pid, v in ours.items() if in_sandbox(pid)}
        guest_nets = {net for net, levels, _, _ in ours.values() if levels == 3}
        publishers = [v for v in ours.values() if v[1] == 2 and v[0] in guest_nets]
        code, _, err = g.finish()
    assert code == 0, err
    assert len(guest_nets) == 1
    assert len(publishers) == 1, publishers
    _, _, status, root = publishers[0]
    assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0
    assert status["Seccomp"].strip() == "2" and status["NoNewPrivs"].strip() == "1"
    assert root == []


STUCK_AND_ECHO = """
import socket, sys, threading
stuck = socket.create_server(('127.0.0.1', 8080), backlog=0)  # never accepts
srv = socket.create_server(('127.0.0.1', 9000))
def serve():
    while True:
        conn, _ = srv.accept()
        with conn:
            while data := conn.recv(1 << 16):
                conn.sendall(data)
threading.Thread(target=serve, daemon=True).start()
sys.stdin.read()
"""


def test_full_guest_backlog_holds_up_only_its_own_port(platform):
    """Connections to a guest listener whose backlog is full wait (the kernel retries their
    SYNs) without holding up another published port: the echo answers while four of them
    are pending. (A publisher that connected synchronously took 5 s per pending one.)"""
    stuck_port, echo_port = free_port(), free_port()
    with Guest(platform, [f"{stuck_port}:8080", f"{echo_port}:9000"], STUCK_AND_ECHO) as g:
        wait_for_echo(echo_port)
        pending = [socket.create_connection(("127.0.0.1", stuck_port), timeout=5)
                   for _ in range(4)]
        with socket.create_connection(("127.0.0.1", echo_port), timeout=8) as c:
            c.sendall(b"still here")
            assert c.recv(100) == b"still here"
        for p in pending:
            p.close()
        code, _, err = g.finish()
    assert code == 0, err
