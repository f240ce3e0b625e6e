"""--console-socket: the container's terminal, made by the runtime and handed to the caller.

As runc: a new pty whose master goes to the unix socket with SCM_RIGHTS; the slave becomes
the container's stdio and controlling terminal. The caller resizes the master; the kernel
signals the foreground process group (the guest's, see boot._take_terminal) with SIGWINCH.
"""

import array
import fcntl
import os
import socket
import struct
import termios

from . import OCIError
from .address import short


def attach(console_socket: str, size: tuple[int, int] | None) -> None:
    """In the holder: the pty's slave as fds 0-2 and the controlling terminal of a new
    session, its master sent to the caller's socket."""
    slave = open_pty(console_socket, size)
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.close(slave)


def open_pty(console_socket: str, size: tuple[int, int] | None) -> int:
    """A new pty whose master goes to the caller's socket; its slave is returned."""
    master, slave = os.openpty()
    try:
        if size:
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
        send_master(console_socket, master, os.ttyname(slave).encode())
    except BaseException:
        os.close(slave)
        raise
    finally:
        os.close(master)
    return slave


def send_master(console_socket: str, master: int, name: bytes) -> None:
    """A pty's master to the caller's socket: runc sends the slave's name as the message,
    the master as the right."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as s:
            with short(console_socket) as address:
                s.connect(address)
            s.sendmsg([name], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                array.array("i", [master]))])
    except OSError as e:
        raise OCIError(f"console socket {console_socket}: {e.strerror or e}") from None
