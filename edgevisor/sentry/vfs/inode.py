"""The interface every file system implements: one Inode per file.

Like Linux's inode_operations, an Inode does only what its file system must do (find, add,
remove and move names, hold data); the VFS above it resolves paths, checks permissions and
mount flags, and keeps the dentry cache. So an Inode method trusts its caller on permissions,
but still refuses what would corrupt its own tree (EEXIST, ENOTEMPTY, a directory moved into
itself), whoever calls it.

An operation a kind of file does not have fails the way Linux fails a missing inode operation:
directory operations on a non-directory give ENOTDIR, readlink of a non-symlink EINVAL, data
access to a directory EISDIR; a file system without host data, attribute changes, statfs or
extended attributes answers as Linux does for one that lacks them (EOPNOTSUPP, EPERM, ENOSYS,
EOPNOTSUPP with an empty list).
"""

import enum
import errno
import os
import stat
from typing import TYPE_CHECKING

from ... import abi
from .errors import error

if TYPE_CHECKING:
    from ...gofer.protocol import StatfsResult


class Kind(enum.IntEnum):
    """The file type, valued as its S_IFMT bits so that `kind | mode` is an st_mode."""

    DIR = stat.S_IFDIR
    REG = stat.S_IFREG
    LNK = stat.S_IFLNK
    FIFO = stat.S_IFIFO
    SOCK = stat.S_IFSOCK
    # Device nodes exist only where a host tree has them: the Sentry never makes one
    # (mknod), and opens one only on a mount without nodev (may_open).
    CHR = stat.S_IFCHR
    BLK = stat.S_IFBLK


class Inode:
    """A file. Attributes, read by the VFS as plain attributes (a file system may compute
    them, as the gofer's does from the host):

    kind, mode (the 07777 permission bits, without the type), uid, gid, nlink, size, ino, dev,
    atime_ns / mtime_ns / ctime_ns (nanoseconds since the epoch), and rdev, blksize, blocks
    as stat(2) shows them.

    The VFS changes them only through `setattr` (and the data and directory operations),
    never by assignment, so that a file system whose attributes live on the host can apply
    the change there. `dead` is the exception, set by the VFS on a directory it removed
    (rmdir, or replaced by a rename): Linux's S_DEAD. Whoever still holds it (a cwd) finds
    nothing in it and can create nothing there."""

    kind: Kind
    mode: int
    uid: int
    gid: int
    nlink: int
    size: int
    ino: int
    dev: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    dead: bool = False
    rdev: int = 0
    blksize: int = 4096

    @property
    def blocks(self) -> int:
        """512-byte blocks in use: whole pages of data, as tmpfs counts them."""
        if self.kind is not Kind.REG:
            return 0
        return (self.size + self.blksize - 1) // self.blksize * (self.blksize // 512)

    @property
    def st_mode(self) -> int:
        return self.kind | self.mode

    @property
    def is_dir(self) -> bool:
        return self.kind is Kind.DIR

    @property
    def is_symlink(self) -> bool:
        return self.kind is Kind.LNK

    # Directory operations. Names are single components (no '/', never '.' or '..').

    def lookup(self, name: bytes) -> "Inode | None":
        """The inode named `name` here, or None. ENAMETOOLONG past the file system's limit."""
        raise error(errno.ENOTDIR)

    def create(self, name: bytes, kind: Kind, mode: int, uid: int, gid: int) -> "Inode":
        """A new directory, regular file, fifo or socket with exactly these attributes."""
        raise error(errno.ENOTDIR)

    def symlink(self, name: bytes, target: bytes, uid: int, gid: int) -> "Inode":
        raise error(errno.ENOTDIR)

    def link(self, name: bytes, inode: "Inode") -> None:
        raise error(errno.ENOTDIR)

    def unlink(self, name: bytes) -> None:
        """Removes a non-directory's name."""
        raise error(errno.ENOTDIR)

    def rmdir(self, name: bytes) -> None:
        """Removes an empty directory."""
        raise error(errno.ENOTDIR)

    def rename(self, old_name: bytes, new_dir: "Inode", new_name: bytes, flags: int = 0) -> None:
        """rename(2) within one file system, honouring RENAME_NOREPLACE / RENAME_EXCHANGE."""
        raise error(errno.ENOTDIR)

    def readdir(self) -> list[tuple[bytes, "Inode"]]:
        """The entries, without '.' and '..'."""
        raise error(errno.ENOTDIR)

    # Symlinks.

    def readlink(self) -> bytes:
        raise error(errno.EINVAL)

    # Regular file data.

    def read(self, offset: int, size: int) -> bytes:
        raise error(errno.EISDIR if self.is_dir else errno.EINVAL)

    def write(self, offset: int, data: bytes) -> int:
        raise error(errno.EISDIR if self.is_dir else errno.EINVAL)

    def truncate(self, size: int, *, touch: bool = False) -> None:
        """Sets the size. mtime and ctime change when the size does (truncate(2)), or
        whenever `touch` (open's O_TRUNC, which always stamps the file)."""
        raise error(errno.EISDIR if self.is_dir else errno.EINVAL)

    # Host data: the guest's descriptors.

    def open_host(self, flags: int) -> int:
        """A new host open file description of this file, opened with `flags` (the access
        mode and the status flags: O_APPEND, O_NONBLOCK, O_DIRECT, O_DSYNC, O_SYNC,
        O_NOATIME, O_DIRECTORY, or O_PATH). The VFS has done the rest of open(2) already
        (O_CREAT, O_EXCL, O_TRUNC, permissions): those flags are ignored here. The caller
        owns the descriptor (close-on-exec). EOPNOTSUPP for a file system with no host data."""
        raise error(errno.EOPNOTSUPP)

    # Attributes.

    def setattr(self, *, mode: int | None = None, uid: int | None = None,
                gid: int | None = None, atime: tuple[int, int] | None = None,
                mtime: tuple[int, int] | None = None) -> None:
        """chmod, chown and utimensat after the VFS allowed them. None leaves an attribute as
        it is. `mode` is the 07777 bits (EOPNOTSUPP on a symlink, as fchmodat2 with
        AT_SYMLINK_NOFOLLOW). A new uid or gid on a non-directory also clears S_ISUID, and
        S_ISGID when group-executable, as Linux's chown does for everyone. `atime` and
        `mtime` are (seconds, nanoseconds) as utimensat takes them: nanoseconds UTIME_NOW
        for the current time, UTIME_OMIT for no change, else 0 to 999999999 (EINVAL
        otherwise). ctime is the file system's to update, as any change updates it."""
        raise error(errno.EPERM)

    def set_times(self, atime, mtime, now: int) -> None:
        """setattr's timestamps, for a file system that keeps them in plain attributes:
        atime and mtime as utimensat gives them, ctime now."""
        for name, pair in (("atime_ns", atime), ("mtime_ns", mtime)):
            when = utime_ns(pair, now)
            if when is not None:
                setattr(self, name, when)
        self.ctime_ns = now

    def statfs(self) -> "StatfsResult":
        """statfs(2) of the file system holding this file. f_flags are the file system's;
        the caller adds the Sentry mount's flags (ST_RDONLY, ST_NOSUID ...)."""
        raise error(errno.ENOSYS)

    # Extended attributes: names with their namespace prefix (b"user.x"); whether a caller
    # may use a namespace is the VFS's decision, which ones exist is the file system's.

    def getxattr(self, name: bytes) -> bytes:
        raise error(errno.EOPNOTSUPP)

    def setxattr(self, name: bytes, value: bytes, flags: int = 0) -> None:
        """`flags`: XATTR_CREATE (EEXIST if present) or XATTR_REPLACE (ENODATA if absent)."""
        raise error(errno.EOPNOTSUPP)

    def listxattr(self) -> list[bytes]:
        return []

    def removexattr(self, name: bytes) -> None:
        raise error(errno.EOPNOTSUPP)


def utime_ns(pair: tuple[int, int] | None, now: int) -> int | None:
    """What a (seconds, nanoseconds) pair of setattr sets a timestamp to, in nanoseconds:
    `now` for UTIME_NOW, None (no change) for UTIME_OMIT or no pair at all."""
    if pair is None or pair[1] == abi.UTIME_OMIT:
        return None
    return now if pair[1] == abi.UTIME_NOW else pair[0] * 1_000_000_000 + pair[1]


def read_through_host(inode: Inode, offset: int, size: int) -> bytes:
    """`inode`'s data read through a host descriptor opened for the call (the Sentry's own,
    rare, reads of a file whose data the host holds)."""
    if offset < 0 or size < 0:
        raise error(errno.EINVAL)
    fd = inode.open_host(abi.O_RDONLY)
    try:
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)
