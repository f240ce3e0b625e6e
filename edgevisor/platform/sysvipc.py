"""/proc/sysvipc as the guest's own: descriptors of the kernel's files opened in its ipc
namespace.

A /proc/sysvipc file lists the SysV objects of the ipc namespace of whoever opened it, and
keeps that namespace for the descriptor's life (each read from offset 0 lists them afresh).
The Sentry is not in the guest's ipc namespace, so at start-up a short-lived child of it
joins the guest's user and ipc namespaces, opens the three files and hands them over. It
stays in the Sentry's pid namespace (the guest's first pids stay its own), so the pids the
files show are the Sentry's numbering (sentry/kernel/sysvipc.py turns them into the guest's).
"""

import errno
import os
import socket

from .. import abi
from .linux import setns

NAMES = ("msg", "sem", "shm")


def open_sysvipc(proc_fd: int, pid: int) -> dict[str, int]:
    """name → a read-only descriptor of /proc/sysvipc/<name> in task `pid`'s ipc namespace
    (`proc_fd`: a procfs of the caller's pid namespace)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    child = os.fork()
    if child == 0:
        try:
            ours.close()
            _join(proc_fd, pid, "user", abi.CLONE_NEWUSER)
            _join(proc_fd, pid, "ipc", abi.CLONE_NEWIPC)
            fds = [os.open(f"sysvipc/{name}", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc_fd)
                   for name in NAMES]
            socket.send_fds(theirs, [b"ok"], fds)
        finally:
            os._exit(0)
    theirs.close()
    try:
        _, fds, _, _ = socket.recv_fds(ours, 16, len(NAMES))
    finally:
        ours.close()
        try:
            os.waitpid(child, 0)
        except ChildProcessError:
            pass  # a platform's reaper took it
    if len(fds) != len(NAMES):
        for fd in fds:
            os.close(fd)
        raise OSError(errno.EIO, "could not open the guest's /proc/sysvipc")
    return dict(zip(NAMES, fds))


def _join(proc_fd: int, pid: int, kind: str, nstype: int) -> None:
    fd = os.open(f"{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc_fd)
    try:
        if os.fstat(fd).st_ino != os.stat(f"self/ns/{kind}", dir_fd=proc_fd).st_ino:
            setns(fd, nstype)  # joining one's own user namespace is EINVAL
    finally:
        os.close(fd)
