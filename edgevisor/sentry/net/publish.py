"""Port publishing (-p): a guest listener made reachable from the host.

The front end binds each published host address before the sandbox starts, so a port in use
is one line of error and nothing runs. The publisher, a process the Sentry forks, holds those
host sockets and moves into the guest's network namespace: every connection it accepts on the
host it opens anew to the guest's port on loopback, and copies bytes both ways. A UDP port
gets one guest-side socket per host peer, so replies go back to whoever asked.

The publisher is in the Sentry's pid namespace (no guest pid names it), keeps no capability,
has no root directory but the Sentry's empty one, and runs under a seccomp filter of its own
that allows the calls of this loop and sockets of the two IP families, and kills it otherwise.
"""

import collections
import errno
import fcntl
import ipaddress
import os
import selectors
import signal
import socket
import termios
import time
from dataclasses import dataclass

from ... import abi
from ...platform import bpf_cache
from ...platform.bpf import export_bpf
from ...platform.helper import detach_helper
from ...platform.linux import prctl, seccomp_load, set_capabilities, setns

_CHUNK = 1 << 16
_UDP_PEERS = 256  # guest-side sockets kept for recent UDP peers, the oldest closed first
CONNECT_TIMEOUT = 10.0  # seconds a guest listener may take to take a connection


@dataclass(frozen=True)
class Port:
    """-p [HOSTIP:]HOSTPORT:GUESTPORT[/udp]: HOSTIP defaults to loopback, as nothing should
    be exposed beyond the host unless asked for."""

    host_ip: str
    host_port: int
    guest_port: int
    proto: str = "tcp"

    @classmethod
    def parse(cls, spec: str) -> "Port":
        """Raise ValueError with the reason for a spec that does not parse."""
        rest, _, proto = spec.partition("/")
        proto = proto or "tcp"
        if proto not in ("tcp", "udp"):
            raise ValueError(f"protocol {proto!r} is neither tcp nor udp")
        host_ip = "127.0.0.1"
        if rest.startswith("["):  # [v6 address]:HOSTPORT:GUESTPORT
            host_ip, sep, rest = rest[1:].partition("]:")
            if not sep:
                raise ValueError("expected [ADDRESS]:HOSTPORT:GUESTPORT")
        elif rest.count(":") == 2:
            host_ip, rest = rest.split(":", 1)
        parts = rest.split(":")
        if len(parts) != 2 or not all(p.isascii() and p.isdigit() for p in parts):
            raise ValueError("expected [HOSTIP:]HOSTPORT:GUESTPORT[/udp]")
        host_port, guest_port = int(parts[0]), int(parts[1])
        if not (0 < host_port < 65536 and 0 < guest_port < 65536):
            raise ValueError("ports are 1 to 65535")
        try:
            ipaddress.ip_address(host_ip)  # strict: no 127.1, no zone, no name
        except ValueError:
            raise ValueError(f"{host_ip!r} is not an IP address") from None
        return cls(host_ip, host_port, guest_port, proto)

    def __str__(self) -> str:
        ip = f"[{self.host_ip}]" if ":" in self.host_ip else self.host_ip
        return f"{ip}:{self.host_port}:{self.guest_port}/{self.proto}"


def bind_host_ports(ports) -> list[socket.socket]:
    """The host side of every published port, bound (and listening, for TCP) in the caller's
    network namespace. Raises OSError naming the port that could not be had."""
    bound = []
    try:
        for port in ports:
            family = socket.AF_INET6 if ":" in port.host_ip else socket.AF_INET
            kind = socket.SOCK_STREAM if port.proto == "tcp" else socket.SOCK_DGRAM
            s = socket.socket(family, kind)
            bound.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((port.host_ip, port.host_port))
            except OSError as e:
                raise OSError(e.errno, f"-p {port}: {e.strerror}") from None
            if kind == socket.SOCK_STREAM:
                s.listen(128)
            s.setblocking(False)
    except BaseException:
        for s in bound:
            s.close()
        raise
    return bound


def start_publisher(ports, host_sockets, guest_netns: int, program: bytes) -> int:
    """Fork the publisher, which loads `program` (build_filter's) as its seccomp filter;
    returns its pid. Call it from the Sentry's main thread, which it follows
    (PR_SET_PDEATHSIG), once the Sentry has left the host's root."""
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            _become_publisher(ports, host_sockets, guest_netns, program, parent)
        finally:
            os._exit(0)
    return pid


def _become_publisher(ports, host_sockets, guest_netns: int, program: bytes, parent: int):
    # 0, 1 and 2 become the (empty, read-only) root directory: a stray write fails.
    nothing = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    if not detach_helper(parent, {s.fileno() for s in host_sockets} | {guest_netns}, nothing):
        return
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGWINCH,
                signal.SIGUSR1, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)  # not the Sentry's handlers
    setns(guest_netns, abi.CLONE_NEWNET)  # sockets made from here on are the guest's
    os.close(guest_netns)
    set_capabilities(frozenset())
    prctl(abi.PR_SET_NO_NEW_PRIVS, 1)
    seccomp_load(program, 0)
    Relay(ports, host_sockets).run()


class _Stream:
    """One TCP connection carried across: bytes copied both ways, each direction with its
    own pending buffer; an end of file is passed on as a shutdown once the buffer drains."""

    def __init__(self, relay: "Relay", host: socket.socket, guest: socket.socket):
        self.relay = relay
        self.ends = (host, guest)
        self.pending = {host: b"", guest: b""}  # what is waiting to be written to that end
        self.eof = {host: False, guest: False}  # that end will send nothing more
        self.watched = {host: 0, guest: 0}  # the events the selector waits for, per end
        for end in self.ends:
            end.setblocking(False)
            self._watch(end, selectors.EVENT_READ)

    def _watch(self, end, events: int) -> None:
        """Wait for exactly these events on this end: a read is held back while what was
        read from it still waits to be written to the other end."""
        before = self.watched[end]
        if events == before:
            return
        selector = self.relay.selector
        if not events:
            selector.unregister(end)
        elif not before:
            selector.register(end, events, self)
        else:
            selector.modify(end, events, self)
        self.watched[end] = events

    def _peer(self, end):
        return self.ends[1] if end is self.ends[0] else self.ends[0]

    def ready(self, end, events: int) -> None:
        try:
            if events & selectors.EVENT_WRITE:
                self._flush(end)
            if events & selectors.EVENT_READ:
                data = end.recv(_CHUNK)
                peer = self._peer(end)
                if data:
                    self.pending[peer] = data
                    self._flush(peer)
                else:
                    self.eof[end] = True
                    if not self.pending[peer]:
                        peer.shutdown(socket.SHUT_WR)
        except OSError:
            self.close()
            return
        if all(self.eof.values()) and not any(self.pending.values()):
            self.close()
            return
        for e in self.ends:
            wanted = 0 if self.eof[e] or self.pending[self._peer(e)] else selectors.EVENT_READ
            if self.pending[e]:
                wanted |= selectors.EVENT_WRITE
            self._watch(e, wanted)

    def _flush(self, end) -> None:
        data = self.pending[end]
        if data:
            try:
                sent = end.send(data)
            except BlockingIOError:
                sent = 0
            self.pending[end] = data[sent:]
        if not self.pending[end] and self.eof[self._peer(end)]:
            end.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        for end in self.ends:
            self._watch(end, 0)
            end.close()


class _Listener:
    def __init__(self, relay: "Relay", host: socket.socket, port: Port):
        self.relay, self.host, self.port = relay, host, port

    def ready(self, end, events: int) -> None:
        try:
            conn, _ = self.host.accept()
        except OSError:
            return
        _Connecting(self.relay, conn, self.port.guest_port)


class _Connecting:
    """A host connection waiting for its guest side: a non-blocking connect to the guest's
    loopback, IPv4 first (a listener on 0.0.0.0, 127.0.0.1 or a dual-stack ::), then ::1 (a
    listener on IPv6 alone). A guest listener whose backlog is full delays only its own
    connections, never the loop; one that does not answer in CONNECT_TIMEOUT is given up."""

    CANDIDATES = ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1"))

    def __init__(self, relay: "Relay", host: socket.socket, port: int):
        self.relay, self.host, self.port = relay, host, port
        self.deadline = time.monotonic() + CONNECT_TIMEOUT
        self.guest = None
        self._try(0)

    def _try(self, index: int) -> None:
        while index < len(self.CANDIDATES):
            family, address = self.CANDIDATES[index]
            self.index = index
            guest = socket.socket(family, socket.SOCK_STREAM)
            guest.setblocking(False)
            err = guest.connect_ex((address, self.port))
            if err == 0:
                _Stream(self.relay, self.host, guest)
                return
            if err == errno.EINPROGRESS:
                self.guest = guest
                self.relay.selector.register(guest, selectors.EVENT_WRITE, self)
                self.relay.connecting.add(self)
                return
            guest.close()
            index += 1
        self.host.close()  # nothing listens in the guest: the host's client sees the close

    def ready(self, end, events: int) -> None:
        self._done()
        err = end.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err == 0:
            _Stream(self.relay, self.host, end)
            return
        end.close()
        self._try(self.index + 1)

    def expire(self, now: float) -> None:
        if now >= self.deadline:
            self._done()
            self.guest.close()
            self.host.close()

    def _done(self) -> None:
        self.relay.selector.unregister(self.guest)
        self.relay.connecting.discard(self)


class _Datagrams:
    """A published UDP port: one connected guest-side socket per host peer, on the guest's
    IPv4 loopback (which a dual-stack listener hears too), moved to ::1 when the guest
    refuses there (a listener on IPv6 alone), with the datagram it refused sent again."""

    def __init__(self, relay: "Relay", host: socket.socket, port: Port):
        self.relay, self.host, self.port = relay, host, port
        self.peers: collections.OrderedDict = collections.OrderedDict()  # peer -> socket
        self.last: dict = {}  # peer -> the last datagram it sent, for a move to ::1

    def ready(self, end, events: int) -> None:
        try:
            data, peer = self.host.recvfrom(_CHUNK)
        except OSError:
            return
        guest = self.peers.get(peer)
        if guest is None:
            guest = self._open(peer, socket.AF_INET)
            if guest is None:
                return
            if len(self.peers) > _UDP_PEERS:
                oldest = next(iter(self.peers))
                self._close(oldest)
                del self.last[oldest]
        self.peers.move_to_end(peer)
        self.last[peer] = data
        try:
            guest.send(data)
        except ConnectionRefusedError:
            self.refused(peer, guest)
        except OSError:
            pass  # a full buffer: UDP drops

    def refused(self, peer, guest) -> None:
        """The guest refused a datagram (ICMP port unreachable) on `guest`."""
        if guest.family != socket.AF_INET or self.peers.get(peer) is not guest:
            return
        self._close(peer)
        moved = self._open(peer, socket.AF_INET6)
        if moved is not None and peer in self.last:
            try:
                moved.send(self.last[peer])
            except OSError:
                pass

    def _open(self, peer, family: int):
        s = socket.socket(family, socket.SOCK_DGRAM)
        try:
            s.connect(("127.0.0.1" if family == socket.AF_INET else "::1", self.port.guest_port))
        except OSError:
            s.close()
            return None
        s.setblocking(False)
        self.peers[peer] = s
        self.relay.selector.register(s, selectors.EVENT_READ, _Reply(self, peer))
        return s

    def _close(self, peer) -> None:
        s = self.peers.pop(peer)
        self.relay.selector.unregister(s)
        s.close()


class _Reply:
    def __init__(self, port: _Datagrams, peer):
        self.port, self.peer = port, peer

    def ready(self, end, events: int) -> None:
        try:
            self.port.host.sendto(end.recv(_CHUNK), self.peer)
        except ConnectionRefusedError:
            self.port.refused(self.peer, end)
        except OSError:
            pass


class Relay:
    def __init__(self, ports, host_sockets):
        self.selector = selectors.EpollSelector()
        self.connecting: set[_Connecting] = set()
        for port, s in zip(ports, host_sockets):
            handler = _Listener(self, s, port) if port.proto == "tcp" else _Datagrams(self, s, port)
            self.selector.register(s, selectors.EVENT_READ, handler)

    def run(self) -> None:
        while True:
            for key, events in self.selector.select(1.0 if self.connecting else None):
                key.data.ready(key.fileobj, events)
            now = time.monotonic()
            for pending in list(self.connecting):
                pending.expire(now)


def build_filter() -> bytes:
    """The publisher's calls: its epoll loop, TCP and UDP sockets of the two IP families
    (connect, accept, copy, shut down), and the Python runtime's own."""
    return bpf_cache.program("publisher", (), _compile)


def _compile() -> bytes:
    import pyseccomp  # only when no cached program will do

    f = pyseccomp.SyscallFilter(defaction=pyseccomp.KILL_PROCESS)
    f.set_attr(pyseccomp.Attr.ACT_BADARCH, abi.SECCOMP_RET_KILL_PROCESS)
    f.set_attr(pyseccomp.Attr.CTL_NNP, 0)
    for name in ("epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "accept4",
                 "connect", "recvfrom", "sendto", "shutdown", "close", "getsockopt",
                 "setsockopt", "getsockname", "getpeername", "poll", "ppoll",
                 "brk", "mmap", "munmap", "mremap", "madvise", "futex", "rt_sigreturn",
                 "clock_gettime", "exit_group", "exit"):
        f.add_rule(pyseccomp.ALLOW, name)
    for family in (abi.AF_INET, abi.AF_INET6):
        f.add_rule(pyseccomp.ALLOW, "socket", pyseccomp.Arg(0, pyseccomp.EQ, family))
    f.add_rule(pyseccomp.ALLOW, "ioctl", pyseccomp.Arg(1, pyseccomp.EQ, termios.FIONBIO))
    for command in (fcntl.F_GETFL, fcntl.F_SETFL):
        f.add_rule(pyseccomp.ALLOW, "fcntl", pyseccomp.Arg(1, pyseccomp.EQ, command))
    return export_bpf(f)

