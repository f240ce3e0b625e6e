"""Escapes through the network, tried by a real program on both platforms, in every mode.

    --network=sandbox (the default), none   a private network namespace with only lo
    --network=host                          AF_INET, AF_INET6 and AF_NETLINK sockets are made
                                            by the Sentry in the host's namespace; AF_UNIX
                                            sockets stay in the guest's, so abstract names are
                                            private in every mode

In every mode the Sentry refuses packet and raw sockets (EPERM), netlink other than
NETLINK_ROUTE (EPROTONOSUPPORT), every other family (EAFNOSUPPORT) and any socket option not
on its allowlist (ENOPROTOOPT); a level the socket's family does not have is left to the
kernel's own level check (ENOPROTOOPT, or EOPNOTSUPP for getsockopt on IP sockets). tests/programs/net_escape.c makes the attempts and prints
`name: ok [detail]` or `name: ERRNO` per check; the host side of each test is a server the
guest must not reach (or, with --network=host, must), and it counts what actually arrived.
"""

import errno
import ipaddress
import os
import secrets
import select
import socket
import subprocess
import threading
import time

import pytest

from ..support import EDGEVISOR
from .test_fs_escapes import mismatches, report

TIMEOUT = 60
SETTLE = 0.5  # how long the host waits for a stray connection or datagram after the guest
MODES = ("default", "sandbox", "none", "host")
PRIVATE = ("default", "sandbox", "none")


def network(mode: str) -> tuple[str, ...]:
    return () if mode == "default" else (f"--network={mode}",)


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


# --- 1. forbidden families, protocols and options ------------------------------------------

# The same in every mode. `a|b` lists alternatives: AF_INET with SOCK_PACKET is the kernel's
# old spelling of an AF_PACKET socket (EPERM), which a Sentry may also refuse as a type it
# does not know. The *_high_* checks set bits above an int's 32, which the kernel ignores:
# they must be judged as the kernel will run them. The last two change nothing (lo's own
# flags, an empty RTM_SETLINK) but need CAP_NET_ADMIN, which the guest lacks even where the
# socket is the Sentry's, in the host's namespace.
POLICY_TEXT = """
    packet_raw: EPERM
    packet_dgram: EPERM
    packet_proto0: EPERM
    packet_legacy: EPERM
    packet_cloexec: EPERM
    packet_high_family: EPERM
    inet_sock_packet: EPERM|ESOCKTNOSUPPORT
    inet_raw_icmp: EPERM
    inet_raw_raw: EPERM
    inet_raw_tcp: EPERM
    inet_raw_udp: EPERM
    inet_raw_cloexec: EPERM
    inet_raw_high_type: EPERM
    inet6_raw_icmpv6: EPERM
    inet6_raw_raw: EPERM
    inet6_raw_tcp: EPERM
    netlink_route_raw: ok
    netlink_route_dgram: ok
    netlink_route_cloexec: ok
    netlink_netfilter_raw: EPROTONOSUPPORT
    netlink_netfilter_dgram: EPROTONOSUPPORT
    netlink_kobject_uevent_raw: EPROTONOSUPPORT
    netlink_kobject_uevent_dgram: EPROTONOSUPPORT
    netlink_audit_raw: EPROTONOSUPPORT
    netlink_audit_dgram: EPROTONOSUPPORT
    netlink_xfrm_raw: EPROTONOSUPPORT
    netlink_xfrm_dgram: EPROTONOSUPPORT
    netlink_generic_raw: EPROTONOSUPPORT
    netlink_generic_dgram: EPROTONOSUPPORT
    netlink_sock_diag_raw: EPROTONOSUPPORT
    netlink_sock_diag_dgram: EPROTONOSUPPORT
    netlink_netfilter_cloexec: EPROTONOSUPPORT
    netlink_netfilter_high_proto: EPROTONOSUPPORT
    netlink_proto_negative: EPROTONOSUPPORT
    bluetooth_socket: EAFNOSUPPORT
    bluetooth_socketpair: EAFNOSUPPORT
    vsock_socket: EAFNOSUPPORT
    vsock_socketpair: EAFNOSUPPORT
    alg_socket: EAFNOSUPPORT
    alg_socketpair: EAFNOSUPPORT
    tipc_socket: EAFNOSUPPORT
    tipc_socketpair: EAFNOSUPPORT
    key_socket: EAFNOSUPPORT
    key_socketpair: EAFNOSUPPORT
    rds_socket: EAFNOSUPPORT
    rds_socketpair: EAFNOSUPPORT
    can_socket: EAFNOSUPPORT
    can_socketpair: EAFNOSUPPORT
    x25_socket: EAFNOSUPPORT
    x25_socketpair: EAFNOSUPPORT
    appletalk_socket: EAFNOSUPPORT
    appletalk_socketpair: EAFNOSUPPORT
    smc_socket: EAFNOSUPPORT
    smc_socketpair: EAFNOSUPPORT
    xdp_socket: EAFNOSUPPORT
    xdp_socketpair: EAFNOSUPPORT
    mctp_socket: EAFNOSUPPORT
    mctp_socketpair: EAFNOSUPPORT
    family255_socket: EAFNOSUPPORT
    family255_socketpair: EAFNOSUPPORT
    alg_cloexec: EAFNOSUPPORT
    vsock_high_family: EAFNOSUPPORT
    unix_stream: ok
    unix_socketpair: ok
    inet_stream: ok
    inet_dgram: ok
    inet6_stream: ok
    inet6_dgram: ok
    ipt_so_set_replace: ENOPROTOOPT
    ipt_so_set_add_counters: ENOPROTOOPT
    ipt_so_set_replace_udp: ENOPROTOOPT
    ipt_so_set_replace_via_inet6: ENOPROTOOPT
    ipt_so_set_replace_high_level: ENOPROTOOPT
    ipt_so_set_replace_high_optname: ENOPROTOOPT
    ipt_so_get_info: ENOPROTOOPT
    ipt_so_get_entries: ENOPROTOOPT
    ip6t_so_set_replace: ENOPROTOOPT
    ip6t_so_get_info: ENOPROTOOPT
    arpt_so_set_replace: ENOPROTOOPT
    ebt_so_set_entries: ENOPROTOOPT
    ip_vs_so_set_add: ENOPROTOOPT
    so_attach_filter: ENOPROTOOPT
    so_attach_filter_unix: ENOPROTOOPT
    so_attach_filter_high_optname: ENOPROTOOPT
    so_attach_bpf: ENOPROTOOPT
    tcp_ulp: ENOPROTOOPT
    tcp_ulp_inet6: ENOPROTOOPT
    ip_msfilter: ENOPROTOOPT
    mcast_join_group: ENOPROTOOPT
    sol_packet_add_membership: ENOPROTOOPT
    sol_packet_statistics: EOPNOTSUPP
    sol_alg_set_key: ENOPROTOOPT
    sol_tls_tx: ENOPROTOOPT
    sol_tls_tx_get: EOPNOTSUPP
    so_reuseaddr: ok 1
    so_keepalive: ok 1
    tcp_nodelay: ok 1
    ipv6_v6only: ok 1
    so_rcvbuf: ok
    rtnetlink_setlink_lo: EPERM
    siocsifflags_lo: EPERM
"""
POLICY = [tuple(line.strip().split(": ", 1)) for line in POLICY_TEXT.strip().splitlines()]


def test_forbidden_sockets_and_options(sandbox, programs, mode):
    r = sandbox(programs["net_escape"], "policy", flags=network(mode), timeout=TIMEOUT)
    problems = mismatches(POLICY, r.stdout)
    if r.returncode != 0:
        problems.insert(0, f"exit status {r.returncode}")
    assert not problems, report(r.stdout, problems, r.stderr)


# --- 2. and 5. abstract unix names -----------------------------------------------------------

def abstract_name() -> str:
    return f"edgevisor-test-{secrets.token_hex(8)}"


def arrivals(stream: socket.socket, dgram: socket.socket) -> tuple[int, int]:
    """Connections waiting on `stream` and datagrams on `dgram`, within SETTLE seconds."""
    accepted = received = 0
    deadline = time.monotonic() + SETTLE
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([stream, dgram], [], [], left)
        if stream in ready:
            stream.accept()[0].close()
            accepted += 1
        if dgram in ready:
            dgram.recv(100)
            received += 1
    return accepted, received


def test_host_abstract_names_unreachable(sandbox, programs, mode):
    """The host listens on an abstract name (stream) and its -dgram twin; the guest tries
    both. Abstract names belong to a network namespace, and unix sockets stay in the guest's
    even with --network=host."""
    name = abstract_name()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stream, \
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as dgram:
        stream.bind(f"\0{name}")
        stream.listen(8)
        dgram.bind(f"\0{name}-dgram")
        r = sandbox(programs["net_escape"], "unix-connect", name, flags=network(mode),
                    timeout=TIMEOUT)
        assert arrivals(stream, dgram) == (0, 0), (r.stdout, r.stderr)
        # The names were there all along: the host itself reaches them.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.connect(f"\0{name}")
        assert arrivals(stream, dgram) == (1, 0)
    assert (r.returncode, r.stdout, r.stderr) == (
        0, "unix_stream_connect: ECONNREFUSED\nunix_dgram_sendto: ECONNREFUSED\n", "")


def read_until(proc: subprocess.Popen, marker: bytes, timeout: float) -> bytes:
    """What `proc` writes to stdout up to and including `marker`, or all of it before EOF or
    the timeout."""
    data, fd = b"", proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    while marker not in data and (left := deadline - time.monotonic()) > 0:
        if not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data


def host_attempts(name: str) -> dict[str, int | str]:
    """The host's try at the guest's names: the errno of each attempt, or "ok"."""
    results = {}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        try:
            s.connect(f"\0{name}")
            results["stream"] = "ok"
        except OSError as e:
            results["stream"] = errno.errorcode.get(e.errno, e.errno)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(b"host", f"\0{name}-dgram")
            results["dgram"] = "ok"
        except OSError as e:
            results["dgram"] = errno.errorcode.get(e.errno, e.errno)
    return results


def test_guest_abstract_names_unreachable_from_host(platform, programs, mode):
    """The guest binds an abstract name (and its -dgram twin), checks it reaches them itself,
    and says "listening"; the host tries them, then closes the guest's stdin, and the guest
    reports whether anyone came."""
    name = abstract_name()
    proc = subprocess.Popen(
        [*EDGEVISOR, "do", f"--platform={platform}", *network(mode), "--",
         programs["net_escape"], "unix-listen", name],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    try:
        ready = read_until(proc, b"listening\n", TIMEOUT)
        attempts = host_attempts(name) if ready.endswith(b"listening\n") else None
        out, err = proc.communicate(input=b"", timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out, err = (ready + out).decode(), err.decode()
    assert ready == b"unix_self: ok\nlistening\n", (out, err)
    assert attempts == {"stream": "ECONNREFUSED", "dgram": "ECONNREFUSED"}, (out, err)
    assert (proc.returncode, out, err) == (
        0, "unix_self: ok\nlistening\nunix_stream_accepted: 0\nunix_dgram_received: 0\n", "")


# --- 3. and 6. the host's TCP and UDP servers -------------------------------------------------

def outside_address(family: socket.AddressFamily) -> str | None:
    """An address of this host other than loopback (and, for IPv6, link-local, which needs a
    scope): from its name, else the source of a route to a documentation address (a UDP
    connect sends nothing)."""
    try:
        found = [info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, family)]
    except OSError:
        found = []
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1" if family == socket.AF_INET else "2001:db8::1", 9))
            found.append(s.getsockname()[0])
        except OSError:
            pass
    for addr in found:
        ip = ipaddress.ip_address(addr)
        if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified):
            return addr
    return None


def ipv6_loopback() -> str | None:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return "::1"
    except OSError:
        return None


# target → (family, address the host server binds, address the guest tries, or None)
TARGETS = {
    "loopback4": lambda: (socket.AF_INET, "127.0.0.1", "127.0.0.1"),
    "loopback6": lambda: (socket.AF_INET6, "::1", ipv6_loopback()),
    "host-ipv4": lambda: (socket.AF_INET, "0.0.0.0", outside_address(socket.AF_INET)),
    "host-ipv6": lambda: (socket.AF_INET6, "::", outside_address(socket.AF_INET6)),
}


@pytest.fixture(params=list(TARGETS))
def target(request):
    family, bind, address = TARGETS[request.param]()
    if address is None:
        pytest.skip(f"this host has no {request.param} address")
    return family, bind, address


class BannerServer:
    """A TCP server on the host that sends every client one line, BANNER, from a thread.
    `finish()` stops it and tells how many clients it accepted, counting any still waiting."""

    def __init__(self, family: socket.AddressFamily, bind: str):
        self.banner = f"edgevisor-banner-{secrets.token_hex(8)}"
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_INET6:
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        self.sock.bind((bind, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            if select.select([self.sock], [], [], 0.05)[0]:
                conn, _ = self.sock.accept()
                self.accepted += 1
                with conn:
                    conn.sendall(f"{self.banner}\n".encode())

    def finish(self) -> int:
        time.sleep(SETTLE)
        self._stop.set()
        self._thread.join(TIMEOUT)
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.accept()[0].close()
                self.accepted += 1
        except BlockingIOError:
            pass
        self.sock.close()
        return self.accepted


def test_host_tcp_server(sandbox, programs, mode, target):
    """A host server on loopback, or on every address for the host's outside addresses: out
    of reach from a private network, reached (its banner read) with --network=host."""
    family, bind, address = target
    server = BannerServer(family, bind)
    try:
        r = sandbox(programs["net_escape"], "tcp", address, str(server.port),
                    flags=network(mode), timeout=TIMEOUT)
    finally:
        accepted = server.finish()
    if mode == "host":
        assert (r.returncode, r.stdout, r.stderr, accepted) == (
            0, f"tcp_connect: ok\ntcp_banner: {server.banner}\n", "", 1)
    else:
        assert r.stdout in ("tcp_connect: ECONNREFUSED\n", "tcp_connect: ENETUNREACH\n"), \
            (r.stdout, r.stderr)
        assert (r.returncode, r.stderr, accepted) == (0, "", 0)


def test_host_udp_server(sandbox, programs, mode, target):
    """The guest sends a token three times to a host UDP server: none arrives from a private
    network (sendto may even succeed, to the guest's own loopback), all three with
    --network=host."""
    family, bind, address = target
    token = f"edgevisor-udp-{secrets.token_hex(8)}"
    with socket.socket(family, socket.SOCK_DGRAM) as server:
        if family == socket.AF_INET6:
            server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        server.bind((bind, 0))
        r = sandbox(programs["net_escape"], "udp", address, str(server.getsockname()[1]), token,
                    flags=network(mode), timeout=TIMEOUT)
        received = []
        while select.select([server], [], [], SETTLE)[0]:
            received.append(server.recv(200).decode(errors="replace"))
    if mode == "host":
        assert (r.returncode, r.stdout, r.stderr, received) == (
            0, "udp_sendto: ok 3\n", "", [token] * 3)
    else:
        assert received == [], (r.stdout, r.stderr)
        assert r.stdout in ("udp_sendto: ok 3\n", "udp_sendto: ENETUNREACH\n"), \
            (r.stdout, r.stderr)
        assert (r.returncode, r.stderr) == (0, "")


# --- 4. the interfaces the guest sees ------------------------------------------------------

def test_interfaces(sandbox, mode):
    """glibc's if_nameindex asks NETLINK_ROUTE for every link: only lo in a private network,
    exactly the host's with --network=host."""
    r = sandbox("python3", "-c", "import socket; print(socket.if_nameindex())",
                flags=network(mode), timeout=TIMEOUT)
    want = socket.if_nameindex() if mode == "host" else [(1, "lo")]
    assert (r.returncode, r.stdout, r.stderr) == (0, f"{want}\n", "")
