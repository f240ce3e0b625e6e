"""The network policy (which sockets and options the guest may have), the -p spec parser, and
the socket handlers, driven without a traced process. The host kernel is the oracle where
asking it is harmless: errors it gives before any family code runs, sockets of families every
kernel has, and getsockopt (which reads and loads nothing)."""

import ctypes
import errno
import fcntl
import os
import socket
import types

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from edgevisor import abi
from edgevisor.sentry.answers import CONTINUE, InstallFd
from edgevisor.sentry.kernel.fs import int32
from edgevisor.sentry.net import policy
from edgevisor.sentry.net.policy import (
    ALLOWED_OPTIONS,
    check_socket,
    is_host_family,
    level_applies,
    option_allowed,
)
from edgevisor.sentry.net.publish import Port
from edgevisor.sentry.net.stack import Network
from edgevisor.sentry.vfs.credentials import Credentials
from edgevisor.sentry.syscalls.sys_socket import (
    sys_getsockopt,
    sys_setsockopt,
    sys_socket,
)

U32 = 0xFFFFFFFF
KNOWN_FLAGS = abi.SOCK_NONBLOCK | abi.SOCK_CLOEXEC
PING = {abi.AF_INET: abi.IPPROTO_ICMP, abi.AF_INET6: abi.IPPROTO_ICMPV6}
SOL_UDPLITE = 136  # the kernel's UDP code answers this level too, on plain UDP sockets
UDP_ENCAP = 100
ETH_P_ALL_BE = 0x0300  # htons(ETH_P_ALL), as a packet socket's protocol

_libc = ctypes.CDLL(None, use_errno=True)
_libc.socket.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
_libc.socket.restype = ctypes.c_int


def native_socket(family: int, type_: int, protocol: int) -> int:
    """socket(2) itself, with the arguments as the kernel reads them (ints): the descriptor,
    or -errno."""
    fd = _libc.socket(int32(family), int32(type_), int32(protocol))
    return fd if fd >= 0 else -ctypes.get_errno()


def refusal(family: int, type_: int, protocol: int) -> int | None:
    try:
        check_socket(family, type_, protocol)
    except OSError as e:
        return e.errno
    return None


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def high(value: int, junk: int) -> int:
    """A 64-bit register whose low half is `value`'s: the kernel reads only that half."""
    return (value & U32) | (junk << 32)


# --- socket(): what the policy lets through ---------------------------------------------------

INTERESTING_FAMILIES = [0, abi.AF_UNIX, abi.AF_INET, abi.AF_INET6, abi.AF_NETLINK,
                        abi.AF_PACKET, 3, 4, 5, 9, 15, 38, 40, 44, 45, 46, 47, 0x7FFFFFFF,
                        0x80000000, U32]
INTERESTING_PROTOCOLS = [0, 1, 2, 6, 17, 41, 58, 132, 136, 255, 256, 262, 263, 0x7FFFFFFF,
                         0x80000000, U32]
BASE_TYPES = list(range(16))
FLAG_BITS = [0, abi.SOCK_NONBLOCK, abi.SOCK_CLOEXEC, KNOWN_FLAGS, 0x10, 0x100, 0x40000,
             0x1000000, 0x80000000, 0x80000 | 0x10]


def registers(interesting):
    """64-bit register values: the interesting ones, small ones, anything, and the
    interesting ones with junk above bit 31."""
    return st.one_of(
        st.sampled_from(interesting),
        st.integers(0, 300),
        st.integers(0, 2**64 - 1),
        st.builds(high, st.sampled_from(interesting), st.integers(1, 2**32 - 1)),
    )


FAMILIES = registers(INTERESTING_FAMILIES)
PROTOCOLS = registers(INTERESTING_PROTOCOLS)
TYPES = st.one_of(
    st.builds(lambda base, flags: base | flags, st.sampled_from(BASE_TYPES),
              st.sampled_from(FLAG_BITS)),
    st.builds(lambda base, flags, junk: high(base | flags, junk), st.sampled_from(BASE_TYPES),
              st.sampled_from(FLAG_BITS), st.integers(1, 2**32 - 1)),
    st.integers(0, 2**64 - 1),
)

REFUSAL_ERRNOS = {errno.EINVAL, errno.EAFNOSUPPORT, errno.EPERM, errno.ESOCKTNOSUPPORT,
                  errno.EPROTONOSUPPORT}


@given(family=FAMILIES, type_=TYPES, protocol=PROTOCOLS)
def test_check_socket_allows_only_ordinary_networking(family, type_, protocol):
    err = refusal(family, type_, protocol)
    if err is not None:
        assert err in REFUSAL_ERRNOS
        return
    family, type_, protocol = family & U32, type_ & U32, protocol & U32
    assert not type_ & ~(abi.SOCK_TYPE_MASK | KNOWN_FLAGS), "unknown type flags passed"
    base = type_ & abi.SOCK_TYPE_MASK
    if family == abi.AF_UNIX:
        return
    if family in (abi.AF_INET, abi.AF_INET6):
        allowed = {(abi.SOCK_STREAM, 0), (abi.SOCK_STREAM, abi.IPPROTO_TCP),
                   (abi.SOCK_DGRAM, 0), (abi.SOCK_DGRAM, abi.IPPROTO_UDP),
                   (abi.SOCK_DGRAM, PING[family])}
        assert (base, protocol) in allowed
        return
    assert family == abi.AF_NETLINK
    assert base in (abi.SOCK_RAW, abi.SOCK_DGRAM)
    assert protocol == abi.NETLINK_ROUTE


@given(family=FAMILIES, type_=TYPES, protocol=PROTOCOLS,
       junk=st.tuples(*[st.integers(0, 2**32 - 1)] * 3))
def test_check_socket_reads_ints(family, type_, protocol, junk):
    """Bits above 31 of a register are not part of the argument, so they change nothing."""
    assert refusal(family, type_, protocol) == refusal(
        high(family, junk[0]), high(type_, junk[1]), high(protocol, junk[2]))


@pytest.mark.parametrize("family,type_,protocol,err", [
    (abi.AF_PACKET, abi.SOCK_RAW, ETH_P_ALL_BE, errno.EPERM),
    (abi.AF_PACKET, abi.SOCK_DGRAM, ETH_P_ALL_BE, errno.EPERM),
    (abi.AF_INET, 10, ETH_P_ALL_BE, errno.EPERM),  # SOCK_PACKET: a packet socket
    (abi.AF_INET, abi.SOCK_RAW, abi.IPPROTO_ICMP, errno.EPERM),
    (abi.AF_INET6, abi.SOCK_RAW, 0, errno.EPERM),
    (abi.AF_INET, abi.SOCK_STREAM, 262, errno.EPROTONOSUPPORT),  # MPTCP
    (abi.AF_INET, abi.SOCK_STREAM, 132, errno.EPROTONOSUPPORT),  # SCTP
    (abi.AF_INET, abi.SOCK_SEQPACKET, 132, errno.ESOCKTNOSUPPORT),
    (abi.AF_INET6, abi.SOCK_DGRAM, 136, errno.EPROTONOSUPPORT),  # UDP-Lite
    (abi.AF_INET, abi.SOCK_DGRAM, abi.IPPROTO_ICMPV6, errno.EPROTONOSUPPORT),
    (abi.AF_INET6, abi.SOCK_DGRAM, abi.IPPROTO_ICMP, errno.EPROTONOSUPPORT),
    (abi.AF_INET, abi.SOCK_STREAM, 263, errno.EINVAL),
    (abi.AF_INET, abi.SOCK_STREAM, U32, errno.EINVAL),
    (abi.AF_NETLINK, abi.SOCK_RAW, 9, errno.EPROTONOSUPPORT),  # audit
    (abi.AF_NETLINK, abi.SOCK_STREAM, 0, errno.ESOCKTNOSUPPORT),
    (38, abi.SOCK_SEQPACKET, 0, errno.EAFNOSUPPORT),  # AF_ALG
    (40, abi.SOCK_STREAM, 0, errno.EAFNOSUPPORT),  # AF_VSOCK
    (44, abi.SOCK_RAW, 0, errno.EAFNOSUPPORT),  # AF_XDP
    (46, abi.SOCK_STREAM, 0, errno.EAFNOSUPPORT),
    (abi.AF_UNIX, 11, 0, errno.EINVAL),
    (abi.AF_UNIX, abi.SOCK_STREAM | 0x10, 0, errno.EINVAL),
])
def test_check_socket_refusals(family, type_, protocol, err):
    assert refusal(family, type_, protocol) == err


# --- socket(): the host kernel as oracle ------------------------------------------------------

def early_errno(family: int, type_: int) -> int | None:
    """Linux's checks before any family code (__sys_socket_create, then __sock_create up to
    request_module): bad type flags, a family >= NPROTO, a type >= SOCK_MAX."""
    family, type_ = family & U32, type_ & U32
    if type_ & ~(abi.SOCK_TYPE_MASK | KNOWN_FLAGS):
        return errno.EINVAL
    if family >= abi.NPROTO:  # int: a negative family is here too
        return errno.EAFNOSUPPORT
    if type_ & abi.SOCK_TYPE_MASK >= abi.SOCK_MAX:
        return errno.EINVAL
    return None


EARLY = st.one_of(
    st.tuples(FAMILIES, TYPES, PROTOCOLS),
    # bad flags
    st.tuples(FAMILIES, st.builds(lambda t, bit: t | 1 << bit, TYPES,
                                  st.integers(4, 31).filter(lambda b: b not in (11, 19))),
              PROTOCOLS),
    # no such family
    st.tuples(st.integers(abi.NPROTO, U32), TYPES, PROTOCOLS),
    # no such type
    st.tuples(FAMILIES, st.builds(lambda base, flags: base | flags,
                                  st.integers(abi.SOCK_MAX, 15), st.sampled_from(FLAG_BITS)),
              PROTOCOLS),
)


@given(args=EARLY)
def test_early_refusals_match_the_kernel(args):
    family, type_, protocol = args
    expected = early_errno(family, type_)
    assume(expected is not None)  # anything else could reach family code or load a module
    assert refusal(family, type_, protocol) == expected
    fd = native_socket(family, type_, protocol)
    if fd >= 0:
        os.close(fd)
    assert fd == -expected


NATIVE = [
    (abi.AF_UNIX, abi.SOCK_STREAM, 0), (abi.AF_UNIX, abi.SOCK_DGRAM, 0),
    (abi.AF_UNIX, abi.SOCK_SEQPACKET, 0),
    (abi.AF_INET, abi.SOCK_STREAM, 0), (abi.AF_INET, abi.SOCK_STREAM, abi.IPPROTO_TCP),
    (abi.AF_INET, abi.SOCK_DGRAM, 0), (abi.AF_INET, abi.SOCK_DGRAM, abi.IPPROTO_UDP),
    (abi.AF_INET6, abi.SOCK_STREAM, 0), (abi.AF_INET6, abi.SOCK_STREAM, abi.IPPROTO_TCP),
    (abi.AF_INET6, abi.SOCK_DGRAM, 0), (abi.AF_INET6, abi.SOCK_DGRAM, abi.IPPROTO_UDP),
]


@pytest.mark.parametrize("flags", [0, abi.SOCK_NONBLOCK, abi.SOCK_CLOEXEC, KNOWN_FLAGS])
@pytest.mark.parametrize("family,type_,protocol", NATIVE)
def test_policy_refuses_no_ordinary_socket(family, type_, protocol, flags):
    fd = native_socket(family, type_ | flags, protocol)
    if fd < 0:
        pytest.skip(f"the host has no such socket: {os.strerror(-fd)}")
    os.close(fd)
    assert refusal(family, type_ | flags, protocol) is None


def test_host_families():
    assert is_host_family(abi.AF_INET) and is_host_family(abi.AF_INET6)
    assert is_host_family(abi.AF_NETLINK) and is_host_family(high(abi.AF_INET, 1))
    assert not is_host_family(abi.AF_UNIX) and not is_host_family(abi.AF_PACKET)


# --- socket options ---------------------------------------------------------------------------

ALLOWED_PAIRS = [(level, name) for level, names in ALLOWED_OPTIONS.items() for name in names]
DANGEROUS = {
    "IPT_SO_SET_REPLACE": (abi.IPPROTO_IP, 64),
    "IPT_SO_SET_ADD_COUNTERS": (abi.IPPROTO_IP, 65),
    "ARPT_SO_SET_REPLACE": (abi.IPPROTO_IP, 96),
    "EBT_SO_SET_ENTRIES": (abi.IPPROTO_IP, 128),
    "IP6T_SO_SET_REPLACE": (abi.IPPROTO_IPV6, 64),
    "IP6T_SO_SET_ADD_COUNTERS": (abi.IPPROTO_IPV6, 65),
    "SO_ATTACH_FILTER": (abi.SOL_SOCKET, 26),
    "SO_ATTACH_BPF": (abi.SOL_SOCKET, 50),
    "SO_ATTACH_REUSEPORT_CBPF": (abi.SOL_SOCKET, 51),
    "SO_ATTACH_REUSEPORT_EBPF": (abi.SOL_SOCKET, 52),
    "SO_ZEROCOPY": (abi.SOL_SOCKET, 60),
    "TCP_ULP": (abi.IPPROTO_TCP, 31),
    "TCP_MD5SIG": (abi.IPPROTO_TCP, 14),
    "TCP_REPAIR": (abi.IPPROTO_TCP, 19),
    "TCP_ZEROCOPY_RECEIVE": (abi.IPPROTO_TCP, 35),
    "UDP_ENCAP": (abi.IPPROTO_UDP, UDP_ENCAP),
    "IP_IPSEC_POLICY": (abi.IPPROTO_IP, 16),
    "IP_XFRM_POLICY": (abi.IPPROTO_IP, 17),
    "IPV6_IPSEC_POLICY": (abi.IPPROTO_IPV6, 34),
    "IPV6_XFRM_POLICY": (abi.IPPROTO_IPV6, 35),
    "IPV6_RTHDR": (abi.IPPROTO_IPV6, 57),
    "MCAST_MSFILTER": (abi.IPPROTO_IP, 48),
    "NETLINK_RX_RING": (abi.SOL_NETLINK, 6),
}
# ip6_tables' optnames (set: 64, 65; get: 64, 65, 68, 69; IP6T_SO_ORIGINAL_DST: 80).
IP6T_OPTNAMES = {64, 65, 68, 69, 80}


@pytest.mark.parametrize("level,name", ALLOWED_PAIRS)
def test_listed_options_are_allowed(level, name):
    assert option_allowed(level, name)
    assert option_allowed(high(level, 7), high(name, 9))


@pytest.mark.parametrize("option", sorted(DANGEROUS))
def test_dangerous_options_are_refused(option):
    assert not option_allowed(*DANGEROUS[option])


def test_option_names_agree_with_the_socket_module():
    for names in ALLOWED_OPTIONS.values():
        for name, label in names.items():
            assert getattr(socket, label, name) == name, label


def test_no_netfilter_optname_is_listed():
    """Netfilter's tables take IP optnames from 64 up, and are reached when the IP code does
    not know an optname. No IPv4 option is that high. IPv6 has real options above 64
    (IPV6_TCLASS is 67), which its own code answers (so netfilter is not reached), but none
    of ip6_tables' numbers."""
    assert all(name < 64 for name in ALLOWED_OPTIONS[abi.IPPROTO_IP])
    assert not IP6T_OPTNAMES & set(ALLOWED_OPTIONS[abi.IPPROTO_IPV6])


def test_listed_ipv6_options_from_64_are_answered_by_the_ipv6_code():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    except OSError:
        pytest.skip("no IPv6")
    with s:
        for name in sorted(n for n in ALLOWED_OPTIONS[abi.IPPROTO_IPV6] if n >= 64):
            s.getsockopt(abi.IPPROTO_IPV6, name)  # ENOPROTOOPT would mean netfilter's turn


UNLISTED_LEVELS = st.one_of(st.integers(0, 300), st.integers(0, U32)).filter(
    lambda level: level not in ALLOWED_OPTIONS and level != SOL_UDPLITE)


@given(level=UNLISTED_LEVELS, name=st.integers(0, 2**64 - 1))
def test_unlisted_levels_are_allowed(level, name):
    assert option_allowed(level, name)


@given(level=st.one_of(st.sampled_from(sorted(ALLOWED_OPTIONS)), st.integers(0, U32)),
       name=st.one_of(st.integers(0, 130), st.integers(0, U32)),
       junk=st.tuples(st.integers(1, 2**32 - 1), st.integers(0, 2**32 - 1)))
def test_option_allowed_reads_ints(level, name, junk):
    assert option_allowed(level, name) == option_allowed(level + (junk[0] << 32),
                                                         name + (junk[1] << 32))
    assert option_allowed(level, name) == option_allowed(level + 2**32, name)


SOCKET_KINDS = {  # name: (family, type, protocol), sockets check_socket allows
    "tcp4": (abi.AF_INET, abi.SOCK_STREAM, 0), "tcp6": (abi.AF_INET6, abi.SOCK_STREAM, 0),
    "udp4": (abi.AF_INET, abi.SOCK_DGRAM, 0), "udp6": (abi.AF_INET6, abi.SOCK_DGRAM, 0),
    "ping4": (abi.AF_INET, abi.SOCK_DGRAM, abi.IPPROTO_ICMP),
    "ping6": (abi.AF_INET6, abi.SOCK_DGRAM, abi.IPPROTO_ICMPV6),
    "unix-stream": (abi.AF_UNIX, abi.SOCK_STREAM, 0),
    "unix-dgram": (abi.AF_UNIX, abi.SOCK_DGRAM, 0),
    "unix-seqpacket": (abi.AF_UNIX, abi.SOCK_SEQPACKET, 0),
    "netlink-route": (abi.AF_NETLINK, abi.SOCK_RAW, abi.NETLINK_ROUTE),
}


@pytest.mark.parametrize("kind", sorted(SOCKET_KINDS))
def test_unlisted_levels_reach_no_option_code(kind):
    """option_allowed lets every option of an unlisted level through, on the word that the
    kernel answers such a level with its level check alone. Asked with getsockopt (which
    changes nothing), on each kind of socket the guest may have."""
    family, type_, protocol = SOCKET_KINDS[kind]
    assert refusal(family, type_, protocol) is None
    try:
        s = socket.socket(family, type_, protocol)
    except OSError as e:
        pytest.skip(f"the host has no such socket: {e.strerror}")
    answered = set()
    with s:
        for level in [*range(300), 0x7FFFFFFF, U32]:
            if level in ALLOWED_OPTIONS:
                continue
            for name in range(128):
                if not option_allowed(level, name):
                    continue
                try:
                    s.getsockopt(int32(level), name, 64)
                except OSError as e:
                    if e.errno in (errno.ENOPROTOOPT, errno.EOPNOTSUPP):
                        continue
                answered.add((level, name))
    assert not answered, f"option code reached at unlisted levels: {sorted(answered)}"


@pytest.mark.parametrize("level,family,type_,applies", [
    (abi.SOL_SOCKET, abi.AF_UNIX, abi.SOCK_STREAM, True),
    (abi.SOL_SOCKET, abi.AF_NETLINK, abi.SOCK_RAW, True),
    (abi.SOL_SOCKET, abi.AF_INET6, abi.SOCK_DGRAM, True),
    (abi.IPPROTO_IP, abi.AF_INET, abi.SOCK_DGRAM, True),
    (abi.IPPROTO_IP, abi.AF_INET6, abi.SOCK_STREAM, True),  # SOL_IP reaches IPv4's code
    (abi.IPPROTO_IP, abi.AF_UNIX, abi.SOCK_STREAM, False),
    (abi.IPPROTO_IP, abi.AF_NETLINK, abi.SOCK_RAW, False),
    (abi.IPPROTO_IPV6, abi.AF_INET6, abi.SOCK_DGRAM, True),
    (abi.IPPROTO_IPV6, abi.AF_INET, abi.SOCK_DGRAM, False),
    (abi.IPPROTO_TCP, abi.AF_INET, abi.SOCK_STREAM, True),
    (abi.IPPROTO_TCP, abi.AF_INET6, abi.SOCK_STREAM, True),
    (abi.IPPROTO_TCP, abi.AF_INET, abi.SOCK_DGRAM, False),
    (abi.IPPROTO_TCP, abi.AF_UNIX, abi.SOCK_STREAM, False),
    (abi.IPPROTO_UDP, abi.AF_INET, abi.SOCK_DGRAM, True),
    (abi.IPPROTO_UDP, abi.AF_INET6, abi.SOCK_DGRAM, True),
    (abi.IPPROTO_UDP, abi.AF_INET, abi.SOCK_STREAM, False),
    (abi.IPPROTO_UDP, abi.AF_UNIX, abi.SOCK_DGRAM, False),
    (abi.SOL_NETLINK, abi.AF_NETLINK, abi.SOCK_RAW, True),
    (abi.SOL_NETLINK, abi.AF_INET, abi.SOCK_DGRAM, False),
])
def test_level_applies(level, family, type_, applies):
    assert level_applies(level, family, type_) is applies
    assert level_applies(high(level, 3), family, type_) is applies


# --- -p specs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("spec,port", [
    ("8080:80", Port("127.0.0.1", 8080, 80, "tcp")),
    ("127.0.0.1:8080:80", Port("127.0.0.1", 8080, 80, "tcp")),
    ("0.0.0.0:1:65535/udp", Port("0.0.0.0", 1, 65535, "udp")),
    ("[::1]:8080:80/tcp", Port("::1", 8080, 80, "tcp")),
    ("[::]:5:6", Port("::", 5, 6, "tcp")),
])
def test_port_parse(spec, port):
    assert Port.parse(spec) == port


@pytest.mark.parametrize("spec", [
    "80", "a:b", "0:80", "80:0", "65536:80", "1:2:3:4", "x.y:1:2", "[::1:1:2", "1:2/sctp",
    "[::1]8080:80", "", ":", "8080:", ":80", "::1:8080:80", "[]:1:2", "-1:80",
    "80:80/tcp/udp", "[::1]:80",
    "1:2:3", "127.1:80:80", "\u0661:\u0662", "\u00b2:1",
])
def test_port_parse_refuses(spec):
    with pytest.raises(ValueError):
        Port.parse(spec)


@given(ip=st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)),
       host_port=st.integers(1, 65535), guest_port=st.integers(1, 65535),
       proto=st.sampled_from(["tcp", "udp"]))
def test_port_round_trips(ip, host_port, guest_port, proto):
    port = Port(str(ip), host_port, guest_port, proto)
    assert Port.parse(str(port)) == port


# --- the handlers -----------------------------------------------------------------------------

class FakeTask:
    """getfd(n) is the guest's descriptor n as a new one of this process (the real Task uses
    pidfd_getfd), here a dup of a descriptor this process holds."""

    def __init__(self, fds=None):
        self.fds = dict(fds or {})
        self.asked = []

    def getfd(self, n):
        self.asked.append(n)
        if n not in self.fds:
            raise OSError(errno.EBADF, "Bad file descriptor")
        return os.dup(self.fds[n])


def kernel(mode, uid=0, gid=0):
    creds = Credentials(uid, gid)
    return types.SimpleNamespace(net=Network(mode), fs=types.SimpleNamespace(creds=creds))


def args(*values):
    return [*values, *[0] * (6 - len(values))]


@pytest.mark.parametrize("family,type_,protocol", [
    *NATIVE, (abi.AF_INET, abi.SOCK_STREAM | KNOWN_FLAGS, 0),
    (abi.AF_NETLINK, abi.SOCK_RAW, abi.NETLINK_ROUTE),
    (abi.AF_INET, abi.SOCK_DGRAM, abi.IPPROTO_ICMP),
])
def test_sys_socket_sandbox_lets_the_kernel_make_allowed_sockets(family, type_, protocol):
    assert sys_socket(kernel("sandbox"), FakeTask(), args(family, type_, protocol)) is CONTINUE


@pytest.mark.parametrize("mode", ["sandbox", "none", "host"])
@pytest.mark.parametrize("family,type_,protocol", [
    (abi.AF_PACKET, abi.SOCK_RAW, ETH_P_ALL_BE), (abi.AF_PACKET, abi.SOCK_DGRAM, ETH_P_ALL_BE),
    (abi.AF_INET, 10, ETH_P_ALL_BE), (abi.AF_INET, abi.SOCK_RAW, abi.IPPROTO_ICMP),
    (abi.AF_INET6, abi.SOCK_RAW, abi.IPPROTO_ICMPV6),
])
def test_sys_socket_packet_and_raw_are_eperm(mode, family, type_, protocol):
    before = open_fds()
    with pytest.raises(OSError) as e:
        sys_socket(kernel(mode), FakeTask(), args(family, type_, protocol))
    assert e.value.errno == errno.EPERM
    assert open_fds() == before


@pytest.mark.parametrize("flags", [0, abi.SOCK_NONBLOCK, abi.SOCK_CLOEXEC, KNOWN_FLAGS])
@pytest.mark.parametrize("family,type_,protocol", [
    (abi.AF_INET, abi.SOCK_STREAM, 0), (abi.AF_INET, abi.SOCK_DGRAM, abi.IPPROTO_UDP),
    (abi.AF_INET6, abi.SOCK_STREAM, abi.IPPROTO_TCP), (abi.AF_INET6, abi.SOCK_DGRAM, 0),
    (abi.AF_NETLINK, abi.SOCK_RAW, abi.NETLINK_ROUTE),
])
def test_sys_socket_host_makes_a_host_socket(family, type_, protocol, flags):
    fd = native_socket(family, type_, protocol)
    if fd < 0:
        pytest.skip(f"the host has no such socket: {os.strerror(-fd)}")
    os.close(fd)
    answer = sys_socket(kernel("host"), FakeTask(), args(high(family, 1), type_ | flags,
                                                         protocol))
    assert isinstance(answer, InstallFd)
    assert answer.cloexec is bool(flags & abi.SOCK_CLOEXEC)
    try:
        nonblocking = bool(fcntl.fcntl(answer.fd, fcntl.F_GETFL) & os.O_NONBLOCK)
        assert nonblocking is bool(flags & abi.SOCK_NONBLOCK)
    finally:
        with socket.socket(fileno=answer.fd) as s:
            assert (s.family, s.type, s.proto) == (family, type_, protocol or s.proto)


@pytest.mark.parametrize("type_", [abi.SOCK_STREAM, abi.SOCK_DGRAM | KNOWN_FLAGS])
def test_sys_socket_host_keeps_unix_sockets_the_guests(type_):
    assert sys_socket(kernel("host"), FakeTask(), args(abi.AF_UNIX, type_, 0)) is CONTINUE


def test_sys_socket_host_refuses_before_making_anything():
    before = open_fds()
    with pytest.raises(OSError) as e:
        sys_socket(kernel("host"), FakeTask(), args(abi.AF_INET, abi.SOCK_STREAM, 132))
    assert e.value.errno == errno.EPROTONOSUPPORT
    assert open_fds() == before


@pytest.fixture
def guest():
    """A fake task whose descriptors 3.. are real ones of this process: the sockets it may
    have and a non-socket. Checks that the handlers close every descriptor they got."""
    made = {}
    for n, (family, type_, protocol) in enumerate([
            (abi.AF_INET, abi.SOCK_STREAM, 0), (abi.AF_INET, abi.SOCK_DGRAM, 0),
            (abi.AF_INET6, abi.SOCK_STREAM, 0), (abi.AF_INET6, abi.SOCK_DGRAM, 0),
            (abi.AF_UNIX, abi.SOCK_STREAM, 0), (abi.AF_NETLINK, abi.SOCK_RAW, 0)], start=3):
        try:
            made[n] = socket.socket(family, type_, protocol)
        except OSError:
            pass  # no IPv6 here: those cases skip
    r, w = os.pipe()
    fds = {n: s.fileno() for n, s in made.items()} | {20: r}
    names = {"tcp4": 3, "udp4": 4, "tcp6": 5, "udp6": 6, "unix": 7, "netlink": 8, "pipe": 20}
    before = open_fds()
    yield FakeTask(fds), names
    assert open_fds() == before, "a handler leaked a descriptor"
    for s in made.values():
        s.close()
    os.close(r)
    os.close(w)


def setsockopt(t, fd, level, name):
    return sys_setsockopt(kernel("sandbox"), t, args(fd, level, name, 0x1000, 4))


@pytest.mark.parametrize("handler", [sys_setsockopt, sys_getsockopt], ids=["set", "get"])
@pytest.mark.parametrize("sock,level,name", [
    ("tcp4", abi.IPPROTO_TCP, 31),  # TCP_ULP
    ("tcp6", abi.IPPROTO_TCP, 19),  # TCP_REPAIR
    ("tcp4", abi.IPPROTO_IP, 64),  # IPT_SO_SET_REPLACE
    ("udp6", abi.IPPROTO_IP, 64),  # SOL_IP on IPv6 reaches IPv4's code
    ("udp6", abi.IPPROTO_IPV6, 64),  # IP6T_SO_SET_REPLACE
    ("udp4", abi.IPPROTO_UDP, UDP_ENCAP),
    ("udp4", abi.SOL_SOCKET, 26),  # SO_ATTACH_FILTER
    ("unix", abi.SOL_SOCKET, 50),  # SO_ATTACH_BPF
    ("netlink", abi.SOL_NETLINK, 6),  # NETLINK_RX_RING
])
def test_refused_option_where_the_level_applies_is_enoprotoopt(guest, handler, sock, level,
                                                              name):
    t, names = guest
    if names[sock] not in t.fds:
        pytest.skip("no such socket here")
    for fd in (names[sock], high(names[sock], 0xFFFF)):
        with pytest.raises(OSError) as e:
            handler(kernel("sandbox"), t, args(fd, level, name, 0x1000, 4))
        assert e.value.errno == errno.ENOPROTOOPT


@pytest.mark.parametrize("sock,level,name", [
    ("udp4", abi.IPPROTO_TCP, 31),  # TCP options on a UDP socket: the kernel's ENOPROTOOPT
    ("tcp4", abi.IPPROTO_UDP, UDP_ENCAP),
    ("tcp4", abi.IPPROTO_IPV6, 64),  # IPv6 level on an IPv4 socket
    ("unix", abi.IPPROTO_IP, 64),  # unix sockets have no IP level: EOPNOTSUPP
    ("netlink", abi.IPPROTO_IP, 64),
    ("pipe", abi.SOL_SOCKET, 26),  # not a socket: ENOTSOCK
    ("pipe", abi.IPPROTO_IP, 64),
])
def test_refused_option_the_kernel_answers_itself_continues(guest, sock, level, name):
    t, names = guest
    if names[sock] not in t.fds:
        pytest.skip("no such socket here")
    assert setsockopt(t, names[sock], level, name) is CONTINUE


@pytest.mark.parametrize("sock,level,name", [
    ("tcp4", abi.IPPROTO_TCP, 1), ("udp6", abi.IPPROTO_IPV6, 67), ("unix", abi.SOL_SOCKET, 17),
    ("netlink", abi.SOL_NETLINK, 11), ("tcp4", 1000, 5),
])
def test_allowed_option_continues_without_looking(guest, sock, level, name):
    t, names = guest
    assert setsockopt(t, names[sock], level, name) is CONTINUE
    assert t.asked == []


@pytest.mark.parametrize("fd", [99, 2**32 - 1, 2**64 - 1, 2**31])
def test_refused_option_on_a_bad_descriptor_continues(guest, fd):
    t, _ = guest
    assert setsockopt(t, fd, abi.SOL_SOCKET, 26) is CONTINUE  # EBADF is the kernel's
    assert all(n >= 0 for n in t.asked)  # a negative fd is not looked up


@pytest.mark.parametrize("handler", [sys_setsockopt, sys_getsockopt], ids=["set", "get"])
@pytest.mark.parametrize("sock", ["udp4", "udp6"])
def test_udp_options_through_the_udplite_level_are_refused(guest, handler, sock):
    """Linux's UDP code takes SOL_UDPLITE (136) as well as SOL_UDP on a plain UDP socket
    (udp_setsockopt and udpv6_setsockopt), so UDP_ENCAP refused at SOL_UDP must be refused
    there too."""
    t, names = guest
    if names[sock] not in t.fds:
        pytest.skip("no such socket here")
    with pytest.raises(OSError) as e:
        handler(kernel("sandbox"), t, args(names[sock], SOL_UDPLITE, UDP_ENCAP, 0x1000, 4))
    assert e.value.errno == errno.ENOPROTOOPT


def test_sys_socket_host_socket_is_owned_by_the_asking_task():
    """A host socket carries the guest task's file system ids, not the Sentry's: the owner
    host firewall rules (-m owner) and /proc/net see. The Sentry's own ids are unchanged."""
    if os.geteuid() != 0:
        pytest.skip("acting as another uid needs root")
    before = (os.getuid(), os.getgid())
    answer = sys_socket(kernel("host", 1234, 5678), None,
                        args(socket.AF_INET, socket.SOCK_STREAM, 0))
    try:
        st = os.fstat(answer.fd)
        assert (st.st_uid, st.st_gid) == (1234, 5678)
    finally:
        os.close(answer.fd)
    with socket.socket() as s:  # made under the Sentry's own ids again
        assert os.fstat(s.fileno()).st_uid == before[0]


@pytest.mark.parametrize("network", ["sandbox", "host"])
def test_the_sockets_the_filter_lets_through_are_ones_the_policy_allows(network):
    """What the guest's filter allows outright (direct_sockets) never needs the Sentry: the
    policy allows it, and no Sentry makes it (--network=host makes the IP ones)."""
    calls = policy.direct_sockets(network)
    assert (abi.AF_UNIX,) in calls
    for call in calls:
        family, type_, protocol = (*call, abi.SOCK_STREAM, 0)[:3]
        policy.check_socket(family, type_, protocol)  # raises for a refused one
        assert network != "host" or not policy.is_host_family(family), call
    assert any(call[0] == abi.AF_INET for call in calls) == (network != "host")
