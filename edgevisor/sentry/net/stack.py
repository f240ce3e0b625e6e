"""The sandbox's network mode, and the sockets the Sentry makes for --network=host."""

import socket

from ... import abi
from .policy import is_host_family

MODES = ("sandbox", "none", "host")


class Network:
    """sandbox (the default): loopback only, ports may be published with -p; none: loopback
    only, nothing published; host: IP and netlink sockets are the host's (unix sockets stay
    private). The Sentry runs in the host's network namespace, the guest in its own."""

    def __init__(self, mode: str = "sandbox"):
        if mode not in MODES:
            raise ValueError(f"unknown network mode {mode!r}")
        self.mode = mode

    def host_socket(self, family: int, type_: int, protocol: int) -> int | None:
        """With --network=host, a new host socket for an IP or netlink socket(2) the policy
        allowed, as a descriptor for the Sentry to install; None where the guest's own
        namespace makes the socket. SOCK_NONBLOCK is the file's, so it is made here;
        SOCK_CLOEXEC is the descriptor's, set when it is installed."""
        if self.mode != "host" or not is_host_family(family):
            return None
        kind = type_ & (abi.SOCK_TYPE_MASK | abi.SOCK_NONBLOCK)
        return socket.socket(family & 0xFFFFFFFF, kind, protocol & 0xFFFFFFFF).detach()
