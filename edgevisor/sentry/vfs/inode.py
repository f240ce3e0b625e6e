"""The interface every file system implements: one Inode per file.

Like Linux's inode_operations, an Inode does only what its file system must do (find, add,
remove and move names, hold data); the VFS above it resolves paths, checks permissions and
mount flags, and keeps the dentry cache. So an Inode method trusts its caller on permissions,
but still refuses what would corrupt its own tree (EEXIST, ENOTEMPTY, a directory moved into
itself), whoever calls it.

An operation a kind of file does not have fails the way Linux fails a missing inode operation:
directory operations on a non-directory give ENOTDIR, readlink of a non-symlink EINVAL, data
access to a directory EISDIR.
"""

import enum
import errno
import stat

from .errors import error


class Kind(enum.IntEnum):
    """The file type, valued as its S_IFMT bits so that `kind | mode` is an st_mode."""

    DIR = stat.S_IFDIR
    REG = stat.S_IFREG
    LNK = stat.S_IFLNK
    FIFO = stat.S_IFIFO
    SOCK = stat.S_IFSOCK


class Inode:
    """A file. Attributes, all plain and writable by the VFS:

    kind, mode (the 07777 permission bits, without the type), uid, gid, nlink, size, ino, dev,
    and atime_ns / mtime_ns / ctime_ns (nanoseconds since the epoch).

    `dead` is set by the VFS on a directory it removed (rmdir, or replaced by a rename):
    Linux's S_DEAD. Whoever still holds it (a cwd) finds nothing in it and can create
    nothing there."""

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
