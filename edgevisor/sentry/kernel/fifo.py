"""Opening a fifo of a host file system, done by the Sentry itself.

The kernel must not open it from the guest's path (CONTINUE): it would read the path from
guest memory again, after another thread rewrote it (issue 10, finding 6). The Sentry reopens
the inode it resolved, through its own /proc/self/fd and a duplicate of the inode's O_PATH
descriptor, so only that fifo can be opened. An open that does not wait (O_NONBLOCK, O_RDWR)
is made at once; one that waits for its peer is a WaitFd, which the platform waits for in a
thread of its own.
"""

import os

from ... import abi
from ...platform.linux import open_interruptible
from ..answers import InstallFd, WaitFd


def open_fifo(proc_fd: int, path_fd: int, flags: int, cloexec: bool) -> InstallFd | WaitFd:
    """`path_fd`: the fifo's O_PATH descriptor (duplicated here: the inode's own may be
    closed, and its number reused, while an open waits). `flags`: the guest's, less what
    concerns only the name (O_CREAT, O_EXCL, O_TRUNC)."""
    flags = flags & ~abi.O_NOFOLLOW | abi.O_CLOEXEC | abi.O_NOCTTY
    if flags & abi.O_NONBLOCK or flags & abi.O_ACCMODE == abi.O_RDWR:
        # A reader without a writer, a writer's ENXIO, O_RDWR: Linux never waits for these.
        return InstallFd(os.open(f"self/fd/{path_fd}", flags, dir_fd=proc_fd), cloexec)
    own = os.dup(path_fd)  # close-on-exec is moot: the Sentry never execs

    def wait() -> int:
        try:
            return open_interruptible(proc_fd, f"self/fd/{own}", flags)
        finally:
            os.close(own)

    return WaitFd(wait, cloexec)
