"""The sandbox's network mode, and the sockets the Sentry makes for --network=host."""

import socket

from ... import abi
from ...platform.linux import file_system_ids
from .policy import is_host_family


class Network:
    """sandbox (the default): loopback only, ports may be published with -p; none: loopback
    only, nothing published; host: IP and netlink sockets are the host's (unix sockets stay
    private). The Sentry runs in the host's network namespace (the OCI runtime's, in the
    container's), the guest in its own."""

    def __init__(self, mode: str = "sandbox", container_netns: bool = False):
        self.mode = mode  # one of net.MODES (RunConfig.validate checks what the user gave)
        self.container_netns = container_netns

    def shows_own_tables(self) -> bool:
        """Whether /proc/net shows the Sentry's namespace: where it makes the guest's IP
        sockets, and only when that namespace is the container's (the OCI holder's, docker's
        eth0). The host's is never shown: `do --network=host` keeps the guest's own tables."""
        return self.mode == "host" and self.container_netns

    def makes(self, family: int) -> bool:
        """Whether the Sentry makes this family's sockets (on the host), rather than the
        guest's own namespace."""
        return self.mode == "host" and is_host_family(family)

    def host_socket(self, family: int, type_: int, protocol: int, creds) -> int:
        """With --network=host, a new host socket for an IP or netlink socket(2) the policy
        allowed, as a descriptor for the Sentry to install. It is made under the asking
        task's file system ids, which the kernel records as its owner (the uid that host
        firewall owner rules and /proc/net see). SOCK_NONBLOCK is the file's, so it is made
        here; SOCK_CLOEXEC is the descriptor's, set when it is installed."""
        kind = type_ & (abi.SOCK_TYPE_MASK | abi.SOCK_NONBLOCK)
        with file_system_ids(creds.uid, creds.gid):
            return socket.socket(family & 0xFFFFFFFF, kind, protocol & 0xFFFFFFFF).detach()
