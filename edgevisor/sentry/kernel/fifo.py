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
from ..answers import WaitFd

# The other end of each waiting open: opening it without blocking wakes the waiter.
_PEER = {abi.O_RDONLY: abi.O_WRONLY, abi.O_WRONLY: abi.O_RDONLY}


def open_fifo(proc_fd: int, path_fd: int, flags: int, cloexec: bool) -> int | WaitFd:
    """`path_fd`: the fifo's O_PATH descriptor (duplicated here: the inode's own may be
    closed, and its number reused, while an open waits). `flags`: the guest's, less what
    concerns only the name (O_CREAT, O_EXCL, O_TRUNC)."""
    flags = flags & ~abi.O_NOFOLLOW | abi.O_CLOEXEC | abi.O_NOCTTY
    if flags & abi.O_NONBLOCK or flags & abi.O_ACCMODE not in _PEER:
        # A reader without a writer, a writer's ENXIO, O_RDWR: Linux never waits for these.
        return _reopen(proc_fd, path_fd, flags)
    own = os.dup(path_fd)  # close-on-exec is moot: the Sentry never execs
    peer_flags = _PEER[flags & abi.O_ACCMODE] | abi.O_NONBLOCK | abi.O_CLOEXEC | abi.O_NOCTTY

    def release() -> None:
        # A reader waits until a writer comes, a writer until a reader does: be that peer
        # for an instant. A writer opens without blocking only beside a reader, so this
        # fails (ENXIO) until the waiting reader is in its open; the platform retries.
        os.close(_reopen(proc_fd, own, peer_flags))

    return WaitFd(lambda: _reopen(proc_fd, own, flags), release, lambda: os.close(own),
                  cloexec)


def _reopen(proc_fd: int, path_fd: int, flags: int) -> int:
    return os.open(f"self/fd/{path_fd}", flags, dir_fd=proc_fd)
