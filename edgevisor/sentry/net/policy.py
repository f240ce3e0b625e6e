"""Which sockets and socket options the guest may have: every decision from registers alone.

The host kernel's network code is a large attack surface (packet sockets, netfilter's
setsockopt tables, kTLS, rarely used protocols whose modules a socket() call loads). The
Sentry lets through only what programs use for ordinary networking: unix, IPv4 and IPv6
stream and datagram sockets, ping sockets, and route netlink, and a list of options on them.
Everything here reads only syscall arguments held in registers, which the guest cannot change
while the call is stopped, so a decision made here is the one the kernel acts on.

Refusals use the errno Linux gives a process without CAP_NET_RAW (raw and packet sockets:
EPERM), or the one it gives for a protocol or option it does not have (EAFNOSUPPORT,
ESOCKTNOSUPPORT, EPROTONOSUPPORT, ENOPROTOOPT), so programs take their usual fallbacks.
"""

import errno

from ... import abi

# Protocols allowed per (family, base type); 0 picks the type's default protocol.
_INET_PROTOCOLS = {
    abi.SOCK_STREAM: frozenset({0, abi.IPPROTO_TCP}),
    abi.SOCK_DGRAM: frozenset({0, abi.IPPROTO_UDP}),
}
_SOCK_PACKET = 10
_IPPROTO_MAX = 263
_PING = {abi.AF_INET: abi.IPPROTO_ICMP, abi.AF_INET6: abi.IPPROTO_ICMPV6}


def check_socket(family: int, type_: int, protocol: int) -> None:
    """Raise OSError with the errno socket(2) gets for a socket the guest may not have.
    The order of the checks is the kernel's, so an argument that is wrong in two ways gets
    the errno Linux would give."""
    family &= 0xFFFFFFFF
    type_ &= 0xFFFFFFFF
    protocol &= 0xFFFFFFFF
    if type_ & ~(abi.SOCK_TYPE_MASK | abi.SOCK_NONBLOCK | abi.SOCK_CLOEXEC):
        raise OSError(errno.EINVAL, "socket: unknown type flags")
    if family >= abi.NPROTO:
        raise OSError(errno.EAFNOSUPPORT, "socket: no such address family")
    base = type_ & abi.SOCK_TYPE_MASK
    if base >= abi.SOCK_MAX:
        raise OSError(errno.EINVAL, "socket: no such type")
    if family == abi.AF_UNIX:
        return  # the kernel's checks suffice; the socket lives in the guest's namespace
    if family == abi.AF_INET and base == _SOCK_PACKET:
        family = abi.AF_PACKET  # the kernel's compatibility mapping, still honoured
    if family in (abi.AF_INET, abi.AF_INET6):
        if protocol >= _IPPROTO_MAX:  # a negative int too
            raise OSError(errno.EINVAL, "socket: no such protocol")
        if base == abi.SOCK_RAW:
            raise OSError(errno.EPERM, "socket: raw sockets need CAP_NET_RAW")
        allowed = _INET_PROTOCOLS.get(base)
        if allowed is None:
            raise OSError(errno.ESOCKTNOSUPPORT, "socket: type not supported")
        if protocol not in allowed and not (base == abi.SOCK_DGRAM
                                            and protocol == _PING[family]):
            raise OSError(errno.EPROTONOSUPPORT, "socket: protocol not supported")
        return
    if family == abi.AF_NETLINK:
        if base not in (abi.SOCK_RAW, abi.SOCK_DGRAM):
            raise OSError(errno.ESOCKTNOSUPPORT, "socket: netlink is raw or datagram")
        if protocol != abi.NETLINK_ROUTE:
            raise OSError(errno.EPROTONOSUPPORT, "socket: only route netlink is offered")
        return
    if family == abi.AF_PACKET:
        raise OSError(errno.EPERM, "socket: packet sockets need CAP_NET_RAW")
    raise OSError(errno.EAFNOSUPPORT, "socket: address family not offered")


def direct_sockets(network: str) -> tuple[tuple[int, ...], ...]:
    """The socket(2) calls the guest's filter lets through to the kernel without asking the
    Sentry, as (family,) for any type and protocol, or (family, type, protocol) exactly,
    each register compared whole: what check_socket allows and no Sentry makes (with
    --network=host it makes the IP ones). Any other call, one with high bits set included,
    is trapped and decided above. socket + close of a unix socket so costs what it does
    natively (7 µs), against 20 µs through the Sentry."""
    calls = [(abi.AF_UNIX,)]
    if network == "host":
        return tuple(calls)
    for family in (abi.AF_INET, abi.AF_INET6):
        for base, protocols in _INET_PROTOCOLS.items():
            if base == abi.SOCK_DGRAM:
                protocols = protocols | {_PING[family]}
            for flags in (0, abi.SOCK_NONBLOCK, abi.SOCK_CLOEXEC,
                          abi.SOCK_NONBLOCK | abi.SOCK_CLOEXEC):
                calls += [(family, base | flags, protocol) for protocol in sorted(protocols)]
    return tuple(calls)


def is_host_family(family: int) -> bool:
    """With --network=host, the families whose sockets the Sentry makes in the host's
    network namespace; unix sockets stay in the guest's own, so abstract names stay private."""
    return family & 0xFFFFFFFF in (abi.AF_INET, abi.AF_INET6, abi.AF_NETLINK)


# The /proc/net tables of the families that stay in the guest's own network namespace when
# the Sentry makes its IP and netlink sockets; every other table describes the interfaces,
# routes and sockets of the Sentry's namespace (Network.shows_own_tables).
GUEST_NET_TABLES = frozenset({"unix", "packet"})


# The socket options the guest may set or read, by level. Left out on purpose: socket
# filters (classic and eBPF), netfilter's tables (IPT_SO_*, IP6T_SO_*, ARPT_SO_*, EBT_SO_*,
# all at 64 and above), IPsec policies, kTLS (TCP_ULP), TCP-MD5 and TCP repair, IPv6 routing
# and hop-by-hop headers, multicast source filters, zerocopy and UDP encapsulation.
_UDP_OPTIONS = {1: "UDP_CORK", 103: "UDP_SEGMENT", 104: "UDP_GRO"}
ALLOWED_OPTIONS: dict[int, dict[int, str]] = {
    abi.SOL_SOCKET: {
        2: "SO_REUSEADDR", 3: "SO_TYPE", 4: "SO_ERROR", 5: "SO_DONTROUTE", 6: "SO_BROADCAST",
        7: "SO_SNDBUF", 8: "SO_RCVBUF", 9: "SO_KEEPALIVE", 10: "SO_OOBINLINE",
        12: "SO_PRIORITY", 13: "SO_LINGER", 15: "SO_REUSEPORT", 16: "SO_PASSCRED",
        17: "SO_PEERCRED", 18: "SO_RCVLOWAT", 19: "SO_SNDLOWAT", 20: "SO_RCVTIMEO_OLD",
        21: "SO_SNDTIMEO_OLD", 25: "SO_BINDTODEVICE", 28: "SO_PEERNAME",
        29: "SO_TIMESTAMP_OLD", 30: "SO_ACCEPTCONN", 31: "SO_PEERSEC", 32: "SO_SNDBUFFORCE",
        33: "SO_RCVBUFFORCE", 34: "SO_PASSSEC", 35: "SO_TIMESTAMPNS_OLD", 36: "SO_MARK",
        37: "SO_TIMESTAMPING_OLD", 38: "SO_PROTOCOL", 39: "SO_DOMAIN", 40: "SO_RXQ_OVFL",
        42: "SO_PEEK_OFF", 45: "SO_SELECT_ERR_QUEUE", 46: "SO_BUSY_POLL",
        47: "SO_MAX_PACING_RATE", 49: "SO_INCOMING_CPU", 55: "SO_MEMINFO",
        56: "SO_INCOMING_NAPI_ID", 57: "SO_COOKIE", 59: "SO_PEERGROUPS",
        62: "SO_BINDTOIFINDEX", 63: "SO_TIMESTAMP_NEW", 64: "SO_TIMESTAMPNS_NEW",
        65: "SO_TIMESTAMPING_NEW", 66: "SO_RCVTIMEO_NEW", 67: "SO_SNDTIMEO_NEW",
        69: "SO_PREFER_BUSY_POLL", 70: "SO_BUSY_POLL_BUDGET", 71: "SO_NETNS_COOKIE",
        72: "SO_BUF_LOCK", 74: "SO_TXREHASH", 75: "SO_RCVMARK", 76: "SO_PASSPIDFD",
        77: "SO_PEERPIDFD",
    },
    abi.IPPROTO_IP: {
        1: "IP_TOS", 2: "IP_TTL", 6: "IP_RECVOPTS", 7: "IP_RETOPTS", 8: "IP_PKTINFO",
        10: "IP_MTU_DISCOVER", 11: "IP_RECVERR", 12: "IP_RECVTTL", 13: "IP_RECVTOS",
        14: "IP_MTU", 15: "IP_FREEBIND", 18: "IP_PASSSEC", 19: "IP_TRANSPARENT",
        24: "IP_BIND_ADDRESS_NO_PORT", 25: "IP_RECVFRAGSIZE", 26: "IP_RECVERR_RFC4884",
        32: "IP_MULTICAST_IF", 33: "IP_MULTICAST_TTL", 34: "IP_MULTICAST_LOOP",
        35: "IP_ADD_MEMBERSHIP", 36: "IP_DROP_MEMBERSHIP", 49: "IP_MULTICAST_ALL",
        51: "IP_LOCAL_PORT_RANGE",
    },
    abi.IPPROTO_IPV6: {
        16: "IPV6_UNICAST_HOPS", 17: "IPV6_MULTICAST_IF", 18: "IPV6_MULTICAST_HOPS",
        19: "IPV6_MULTICAST_LOOP", 20: "IPV6_JOIN_GROUP", 21: "IPV6_LEAVE_GROUP",
        23: "IPV6_MTU_DISCOVER", 24: "IPV6_MTU", 25: "IPV6_RECVERR", 26: "IPV6_V6ONLY",
        29: "IPV6_MULTICAST_ALL", 31: "IPV6_RECVERR_RFC4884", 49: "IPV6_RECVPKTINFO",
        50: "IPV6_PKTINFO", 51: "IPV6_RECVHOPLIMIT", 52: "IPV6_HOPLIMIT",
        62: "IPV6_DONTFRAG", 66: "IPV6_RECVTCLASS", 67: "IPV6_TCLASS",
        70: "IPV6_AUTOFLOWLABEL", 72: "IPV6_ADDR_PREFERENCES", 73: "IPV6_MINHOPCOUNT",
        75: "IPV6_TRANSPARENT", 78: "IPV6_FREEBIND",
    },
    abi.IPPROTO_TCP: {
        1: "TCP_NODELAY", 2: "TCP_MAXSEG", 3: "TCP_CORK", 4: "TCP_KEEPIDLE",
        5: "TCP_KEEPINTVL", 6: "TCP_KEEPCNT", 7: "TCP_SYNCNT", 8: "TCP_LINGER2",
        9: "TCP_DEFER_ACCEPT", 10: "TCP_WINDOW_CLAMP", 11: "TCP_INFO", 12: "TCP_QUICKACK",
        13: "TCP_CONGESTION", 16: "TCP_THIN_LINEAR_TIMEOUTS", 17: "TCP_THIN_DUPACK",
        18: "TCP_USER_TIMEOUT", 23: "TCP_FASTOPEN", 25: "TCP_NOTSENT_LOWAT",
        26: "TCP_CC_INFO", 27: "TCP_SAVE_SYN", 28: "TCP_SAVED_SYN",
        30: "TCP_FASTOPEN_CONNECT", 34: "TCP_FASTOPEN_NO_COOKIE", 36: "TCP_INQ",
    },
    abi.IPPROTO_UDP: _UDP_OPTIONS,
    abi.IPPROTO_UDPLITE: _UDP_OPTIONS,  # UDP sockets take them at this level too
    abi.SOL_NETLINK: {
        1: "NETLINK_ADD_MEMBERSHIP", 2: "NETLINK_DROP_MEMBERSHIP", 3: "NETLINK_PKTINFO",
        4: "NETLINK_BROADCAST_ERROR", 5: "NETLINK_NO_ENOBUFS", 9: "NETLINK_LIST_MEMBERSHIPS",
        10: "NETLINK_CAP_ACK", 11: "NETLINK_EXT_ACK", 12: "NETLINK_GET_STRICT_CHK",
    },
}


def option_allowed(level: int, name: int) -> bool:
    """Whether the guest may set or read this option. A level the list does not name is
    allowed: on the families check_socket lets exist, the kernel answers it with its own
    level check (ENOPROTOOPT or EOPNOTSUPP) and runs no option code."""
    names = ALLOWED_OPTIONS.get(level & 0xFFFFFFFF)
    return names is None or name & 0xFFFFFFFF in names


def level_applies(level: int, family: int, type_: int) -> bool:
    """Whether the kernel would look at options of this level on such a socket (so that a
    refused one is ENOPROTOOPT, an unknown option); where it would not, its own level check
    answers, with Linux's errno. SOL_IP reaches the IPv4 code from IPv6 sockets too."""
    level &= 0xFFFFFFFF
    ip = family in (abi.AF_INET, abi.AF_INET6)
    return (level == abi.SOL_SOCKET
            or (level == abi.IPPROTO_IP and ip)
            or (level == abi.IPPROTO_IPV6 and family == abi.AF_INET6)
            or (level == abi.IPPROTO_TCP and ip and type_ == abi.SOCK_STREAM)
            or (level in (abi.IPPROTO_UDP, abi.IPPROTO_UDPLITE) and ip
                and type_ == abi.SOCK_DGRAM)
            or (level == abi.SOL_NETLINK and family == abi.AF_NETLINK))
