"""Mounts and the mount table: Linux's vfsmount and mount namespace."""

import collections
import errno

from .dentry import Dentry
from .errors import error
from .inode import Inode


DENTRY_LRU = 4096


class Mount:
    """A file system attached at `mountpoint` (a dentry of the `parent` mount); the root mount
    of a table has neither. `root` is the dentry the mount shows at that point."""

    __slots__ = (
        "children",
        "mountpoint",
        "nodev",
        "noexec",
        "nosuid",
        "nosymfollow",
        "parent",
        "readonly",
        "root",
        "table",
    )

    def __init__(self, table: "MountTable", root: Inode, *, readonly=False, nosuid=False,
                 nodev=False, noexec=False, nosymfollow=False):
        self.table = table
        self.root = Dentry(b"/", None, root, self)
        self.mountpoint: Dentry | None = None
        self.parent: Mount | None = None
        self.children: list[Mount] = []
        self.readonly = readonly
        self.nosuid = nosuid
        self.nodev = nodev
        self.noexec = noexec
        self.nosymfollow = nosymfollow  # symlinks on this mount are never followed (ELOOP)

    def __repr__(self) -> str:
        where = "root" if self.mountpoint is None else self.mountpoint.name
        return f"<Mount dev={self.root.inode.dev:#x} at {where!r}>"

    def want_write(self) -> None:
        """Linux's mnt_want_write: EROFS on a read-only mount."""
        if self.readonly:
            raise error(errno.EROFS)


class MountTable:
    """The mounts of one mount namespace.

    A mount sits on a dentry of its parent mount. Mounting again at a covered point puts the
    new mount on top (on the root of the mount there, as Linux's lock_mount does), so the
    last one mounted is the one a walk enters, and unmounting it uncovers the one beneath.

    `protected_symlinks`, `protected_hardlinks`, `protected_regular` and `protected_fifos`
    are the fs.protected_* sysctls, set as systemd sets them on mainstream distributions
    (the kernel's own defaults are all 0)."""

    def __init__(self, root: Inode, **flags):
        self.root = Mount(self, root, **flags)
        self._covering: dict[Dentry, Mount] = {}
        # Mountpoints by inode: Linux refuses to unlink or rename a mountpoint seen through
        # any mount of its file system, since its dentries are per file system, not per mount.
        self._busy: collections.Counter[Inode] = collections.Counter()
        # Linux's dentry LRU, in small: the last dentries made stay alive although nobody
        # holds them, so that a hot path (/usr/lib/...) is not made anew by every syscall.
        self.recently_used: collections.deque[Dentry] = collections.deque(maxlen=DENTRY_LRU)
        self.protected_symlinks = True
        self.protected_hardlinks = True
        self.protected_regular = 1
        self.protected_fifos = 1

    def covering(self, dentry: Dentry) -> Mount | None:
        """The mount sitting directly on `dentry`, if any."""
        return self._covering.get(dentry)

    def traverse(self, dentry: Dentry) -> Dentry:
        """Where a walk arriving at `dentry` ends up: the root of the topmost mount on it."""
        while (mount := self._covering.get(dentry)) is not None:
            dentry = mount.root
        return dentry

    def is_mountpoint(self, dentry: Dentry) -> bool:
        return self._busy[dentry.inode] > 0

    def mount(self, root: Inode, at: Dentry, **flags) -> Mount:
        if at.mount.table is not self:
            raise error(errno.EINVAL)
        if at.dead or not self._attached(at.mount):
            raise error(errno.ENOENT)  # Linux's lock_mount: removed, or lazily unmounted
        at = self.traverse(at)
        if at.inode.is_dir != root.is_dir:
            raise error(errno.ENOTDIR)
        mount = Mount(self, root, **flags)
        mount.parent, mount.mountpoint = at.mount, at
        at.mount.children.append(mount)
        self._covering[at] = mount
        self._busy[at.inode] += 1
        return mount

    def umount(self, mount: Mount, *, detach: bool = False) -> None:
        """Detaches `mount`: EBUSY while mounts sit on it, unless `detach` (MNT_DETACH), which
        takes them all away with it."""
        if mount.table is not self or mount is self.root or not self._attached(mount):
            raise error(errno.EINVAL)
        if mount.children and not detach:
            raise error(errno.EBUSY)
        for child in list(mount.children):
            self.umount(child, detach=True)
        self._covering.pop(mount.mountpoint)
        self._busy[mount.mountpoint.inode] -= 1
        if not self._busy[mount.mountpoint.inode]:
            del self._busy[mount.mountpoint.inode]
        mount.parent.children.remove(mount)
        mount.parent = mount.mountpoint = None

    def mounts(self) -> list[Mount]:
        """Every attached mount, parents before children (the order of /proc/self/mounts)."""
        out, todo = [], [self.root]
        while todo:
            mount = todo.pop()
            out.append(mount)
            todo.extend(reversed(mount.children))
        return out

    def _attached(self, mount: Mount) -> bool:
        while mount.parent is not None:
            mount = mount.parent
        return mount is self.root
