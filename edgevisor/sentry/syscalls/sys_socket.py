"""Sockets: the Sentry decides which the guest may have and where they live (sentry/net);
the kernel runs them, in the guest's own network namespace or, for --network=host, on host
sockets the Sentry made. Everything decided here comes from registers, which the guest cannot
change under a stopped call."""

import errno
import os
import socket

from ... import abi
from ..answers import CONTINUE, InstallFd
from ..kernel.fs import int32
from ..net.policy import check_socket, level_applies, option_allowed


def sys_socket(k, t, a):
    check_socket(a[0], a[1], a[2])
    if not k.net.makes(a[0]):
        return CONTINUE
    fd = k.net.host_socket(a[0], a[1], a[2], k.fs.creds)
    return InstallFd(fd, cloexec=bool(a[1] & abi.SOCK_CLOEXEC))


def sys_socketpair(k, t, a):
    check_socket(a[0], a[1], a[2])  # the pair is always the guest's own (only unix has one)
    return CONTINUE


def sys_setsockopt(k, t, a):
    """An option off the Sentry's list is ENOPROTOOPT where the kernel would have looked it
    up; a bad descriptor, a non-socket or a level the socket has not are the kernel's to
    answer, and it answers them before reaching any option's code."""
    level, name = a[1], a[2]
    if not option_allowed(level, name):
        kind = _socket_kind(t, int32(a[0]))
        if kind is not None and level_applies(level, *kind):
            raise OSError(errno.ENOPROTOOPT, "socket option not offered")
    return CONTINUE


sys_getsockopt = sys_setsockopt


def _socket_kind(t, fd: int) -> tuple[int, int] | None:
    """(family, type) of the guest's socket `fd`; None if it is not a socket."""
    if fd < 0:
        return None
    try:
        host = t.getfd(fd)
    except OSError:
        return None
    try:
        with socket.socket(fileno=host) as s:
            return s.family, s.type & abi.SOCK_TYPE_MASK
    except OSError:  # ENOTSOCK: socket() closed nothing, so close it here
        os.close(host)
        return None


def sys_bind(k, t, a):
    """A unix socket's name is a new file in the guest's view, which the kernel makes after
    the Sentry lets the call run, reading the address from guest memory again: another
    thread may have rewritten it meanwhile (the name, or the family that says it is one), so
    that what the Sentry read says nothing of where the kernel binds. The host file systems
    forget every name they remember absent, so that none hides the one bound. (The kernel
    binds only in the guest's view, which holds nothing the Sentry hides.)"""
    k.fs.forget_absent()
    return CONTINUE
