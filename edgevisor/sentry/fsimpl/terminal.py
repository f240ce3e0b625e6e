"""The terminal the guest was handed, named in its own /dev/pts.

The front end hands the guest a host pty (the user's terminal, or the one `create
--console-socket` made) as its stdio, but the guest's /dev/pts is a devpts instance of the
sandbox's own: the host's name for it (/dev/pts/5) names nothing there, or one of the
guest's own ptys. So ttyname(3), which reads /proc/self/fd/N and checks that stat of that
name is the descriptor's file (st_dev, st_ino, st_rdev), failed: `tty` said "not a tty".

As a container runtime names the pty it makes in the container's devpts, the Sentry gives
each handed pty a name of the guest's devpts: it reserves a number there by opening the
instance's ptmx itself (the master stays the Sentry's and the slave locked, so that number
is never the guest's and its node opens for nobody), and the name shows this inode instead:

- its stat is the host pty's own (fstat of the Sentry's descriptor of it), the very answer
  the kernel gives the guest's fstat of its descriptor; /proc/PID/fd/N of that descriptor
  reads as this name (kernel/fs.py `terminals`);
- opening it reopens that pty through the Sentry's /proc/self/fd, never with more access
  than the handed description has;
- it changes nothing: chmod, chown, utimes and xattrs are EPERM, as for the handed
  descriptors themselves. Its data, the terminal's, is the guest's already.

Nothing else of the host's devpts is reachable: no other of its names is in the guest's.
"""

import errno
import fcntl
import os
import stat
import struct

from ... import abi
from ..vfs.errors import error
from ..vfs.inode import Inode, Kind

# What a reopen keeps of the guest's open flags (O_CREAT, O_EXCL, O_TRUNC were the VFS's).
_REOPEN = abi.O_ACCMODE | abi.O_APPEND | abi.O_NONBLOCK | os.O_DSYNC | os.O_SYNC | os.O_ASYNC


def is_pty(st: os.stat_result) -> bool:
    """A Unix 98 pty's slave (majors 136-143), as glibc's ttyname tells one."""
    return stat.S_ISCHR(st.st_mode) and 136 <= os.major(st.st_rdev) <= 143


class HandedTerminal(Inode):
    """A host pty the guest was handed, standing at its name in the guest's devpts. `fd`
    is the Sentry's own descriptor of it (close-on-exec), `proc_fd` the Sentry's procfs,
    `devpts` the devpts root it is named in (for statfs)."""

    kind = Kind.CHR

    def __init__(self, fd: int, proc_fd: int, devpts: Inode):
        self._fd = fd
        self._proc_fd = proc_fd
        self._devpts = devpts

    def __repr__(self) -> str:
        return f"<handed terminal {os.major(self.rdev)}:{os.minor(self.rdev)}>"

    def stat(self) -> os.stat_result:
        """The host pty's own stat: what the kernel answers the guest's fstat."""
        return os.fstat(self._fd)

    @property
    def host_key(self) -> tuple[int, int]:
        st = self.stat()
        return st.st_dev, st.st_ino

    mode = property(lambda self: stat.S_IMODE(self.stat().st_mode))
    uid = property(lambda self: self.stat().st_uid)
    gid = property(lambda self: self.stat().st_gid)
    nlink = property(lambda self: self.stat().st_nlink)
    size = property(lambda self: self.stat().st_size)
    ino = property(lambda self: self.stat().st_ino)
    dev = property(lambda self: self.stat().st_dev)
    rdev = property(lambda self: self.stat().st_rdev)
    blksize = property(lambda self: self.stat().st_blksize)
    blocks = property(lambda self: self.stat().st_blocks)
    atime_ns = property(lambda self: self.stat().st_atime_ns)
    mtime_ns = property(lambda self: self.stat().st_mtime_ns)
    ctime_ns = property(lambda self: self.stat().st_ctime_ns)

    def open_host(self, flags: int) -> int:
        """A new open of the pty, with at most the access the handed description has (the
        Sentry opens it, with its own credentials)."""
        had = fcntl.fcntl(self._fd, fcntl.F_GETFL) & os.O_ACCMODE
        want = flags & os.O_ACCMODE
        if had != os.O_RDWR and want != had:
            raise error(errno.EACCES)
        return os.open(f"self/fd/{self._fd}", flags & _REOPEN | os.O_CLOEXEC | os.O_NOCTTY,
                       dir_fd=self._proc_fd)

    def setattr(self, *, mode=None, uid=None, gid=None, atime=None, mtime=None) -> None:
        raise error(errno.EPERM)  # the host's node: the user's terminal, not the sandbox's

    def setxattr(self, name: bytes, value: bytes, flags: int = 0) -> None:
        raise error(errno.EPERM)

    def removexattr(self, name: bytes) -> None:
        raise error(errno.EPERM)

    def statfs(self):
        return self._devpts.statfs()


def reserve_names(ptmx: str, count: int) -> list[tuple[bytes, int]]:
    """`count` numbers of the devpts instance whose ptmx is at `ptmx`, each held by a master
    the Sentry keeps (close-on-exec) with its slave locked: (name, master) pairs."""
    out = []
    for _ in range(count):
        master = os.open(ptmx, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        number = struct.unpack("I", fcntl.ioctl(master, abi.TIOCGPTN, b"\0" * 4))[0]
        out.append((str(number).encode(), master))
    return out
