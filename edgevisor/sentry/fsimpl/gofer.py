"""Files that live on the host, reached through the gofer: one GoferFS per gofer mount (the
rootfs overlay, /tmp and /dev/shm, each -v bind).

An inode holds an O_PATH | O_NOFOLLOW descriptor the gofer opened for it. That descriptor
is the inode's identity (its host (st_dev, st_ino), and the host keeps that inode number
while we hold it), and its attributes come from fstat on it, locally: the guest writes
through its own host descriptors behind the Sentry's back, so a cached stat is trusted only
within one Sentry generation (`fs_generation`, bumped once per syscall) and within the
operation that changed it. Everything else goes to the gofer, which is path-based: an inode
knows the (directory, name) pairs it is reached by (a few, for a file of many hard links),
and its path is computed from them at call time, so renaming a directory moves every cached
descendant with it.

Names are cached in each directory while their inodes live; a bounded set of recently used
inodes is kept alive (their descriptors open) so that walks seldom ask the gofer. An
`exclusive` file system (only this sandbox changes it: the rootfs overlay, a tmpfs) trusts
that cache, negative entries included, since the Sentry's own operations keep it right. A
shared one (a host bind mount) asks the gofer on every lookup and replaces what changed.

Not thread-safe: like the rest of the VFS, one syscall at a time.
"""

import collections
import errno
import os
import stat
import weakref

from ... import abi
from ...gofer.client import GoferClient
from ...gofer.protocol import StatfsResult
from ..vfs.errors import error
from ..vfs.inode import Inode, Kind, read_through_host
from . import anon_dev
from .directfs import open_beneath


class Generation:
    """A counter the Sentry bumps once per syscall. A cached host stat older than the current
    value is taken again before it is read, so each syscall sees attributes at least as new
    as its own start (a guest write through its descriptor included), at one fstat per
    inode it looks at."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 1

    def bump(self) -> None:
        self.value += 1


fs_generation = Generation()  # the one every GoferFS consults unless given another

_KINDS = {stat.S_IFDIR: Kind.DIR, stat.S_IFREG: Kind.REG, stat.S_IFLNK: Kind.LNK,
          stat.S_IFIFO: Kind.FIFO, stat.S_IFSOCK: Kind.SOCK, stat.S_IFCHR: Kind.CHR,
          stat.S_IFBLK: Kind.BLK}
_O_PATH = abi.O_PATH | abi.O_NOFOLLOW | abi.O_CLOEXEC
# What of the guest's open flags describes the host open file description.
_HOST_OPEN = (abi.O_ACCMODE | abi.O_APPEND | abi.O_NONBLOCK | abi.O_DIRECTORY | abi.O_NOATIME
              | os.O_DSYNC | os.O_SYNC | os.O_DIRECT | os.O_ASYNC)
_NEGATIVE_MAX = 1024  # absent names remembered per directory
_MAX_DEPTH = abi.PATH_MAX // 2  # more names than any path can have: a cycle
# Names of one hard-linked file remembered: each holds its directory (and so a descriptor)
# alive, and a file may have tens of thousands of names in as many directories.
_LINKS_KEPT = 16


class GoferFS:
    """The files of gofer mount `mount`. `dev` is the st_dev the guest sees for all of them
    (a fresh anonymous device when None); `cache_size` bounds the inodes kept alive by the
    cache alone, each holding one host descriptor."""

    def __init__(self, client: GoferClient, mount: int, *, dev: int | None = None,
                 exclusive: bool, generation: Generation = fs_generation,
                 cache_size: int = 1024, host_shared: bool = False, direct: bool = False):
        self.client = client
        # directfs (fsimpl/directfs.py): lookups open beneath the directory's own descriptor.
        self.direct = direct
        # Host users reach its files: the gofer makes no set-id file there (gofer/fs.py),
        # so the mode asked of it at creation is the one without them.
        self.host_shared = host_shared
        self.mount = mount
        self.dev = anon_dev() if dev is None else dev
        self.exclusive = exclusive
        self.generation = generation
        self.cache_size = cache_size
        self._by_key: weakref.WeakValueDictionary[tuple[int, int], GoferInode] = (
            weakref.WeakValueDictionary())
        self._recent: collections.OrderedDict[GoferInode, None] = collections.OrderedDict()
        # Directories (by host identity) whose names change behind the Sentry's back, never
        # cached: a devpts instance, where the open of ptmx makes a name and the last close
        # of its master removes it. Each maps names that stand for another inode there (the
        # terminal the guest was handed, fsimpl/terminal.py) to that inode.
        self._live: dict[tuple[int, int], dict[bytes, Inode]] = {}
        fd = client.open(mount, b".", _O_PATH | abi.O_DIRECTORY)
        self.root = self._make(fd)

    def __repr__(self) -> str:
        return f"<GoferFS mount={self.mount} dev={self.dev:#x}>"

    def by_host_key(self, st_dev: int, st_ino: int) -> "GoferInode | None":
        """The live inode whose host file has this identity (hard links share one), or None."""
        key = (st_dev, st_ino)
        inode = self._by_key.get(key)
        if inode is not None:
            inode._stat()  # re-keys it if the host moved it (an overlay copy-up)
            inode = self._by_key.get(key)
        return inode

    def drop_caches(self) -> None:
        """Forgets what nothing else holds: the recently used inodes and absent names."""
        self._recent.clear()
        self.forget_absent()

    def forget_absent(self) -> None:
        """Forgets every name remembered absent: the kernel may have made one in the guest's
        view behind the Sentry's back (a unix socket's bind)."""
        for inode in list(self._by_key.values()):
            if isinstance(inode, GoferDirectory):
                inode._negative.clear()

    def live_directory(self, directory: "GoferDirectory",
                       entries: dict[bytes, Inode] | None = None) -> None:
        """`directory`'s names change behind the Sentry's back: look them up every time.
        `entries`: names there that stand for these inodes instead."""
        self._live.setdefault(directory.host_key, {}).update(entries or {})

    # Inside the file system.

    def _make(self, fd: int) -> "GoferInode":
        try:
            st = os.stat(fd)
            kind = _KINDS.get(stat.S_IFMT(st.st_mode))
            if kind is None:
                raise error(errno.EIO)
        except BaseException:
            os.close(fd)
            raise
        cls = {Kind.DIR: GoferDirectory, Kind.REG: GoferFile,
               Kind.LNK: GoferSymlink}.get(kind, GoferInode)
        return cls(self, fd, st, kind)

    def _touch(self, inode: "GoferInode") -> None:
        recent = self._recent
        if inode in recent:
            recent.move_to_end(inode)
            return
        recent[inode] = None
        if len(recent) > self.cache_size:
            recent.popitem(last=False)

    def _rekey(self, inode: "GoferInode", key: tuple[int, int]) -> None:
        if self._by_key.get(inode._key) is inode:
            del self._by_key[inode._key]
        inode._key = key
        self._by_key[key] = inode


class GoferInode(Inode):
    """A file behind the gofer. Fifos, sockets and device nodes are this class itself."""

    # Its descriptor closed: the guest removed the file's last name (`release`).
    released = False

    def __init__(self, fs: GoferFS, fd: int, st: os.stat_result, kind: Kind):
        self._fd = fd
        self.fs = fs
        self.kind = kind
        self._st = st
        self._gen = fs.generation.value
        self._key = (st.st_dev, st.st_ino)
        # The (directory, name) pairs this file is known by, the path's first. Strong
        # references: the path must stay computable while the inode lives.
        self._links: list[tuple[GoferDirectory, bytes]] = []
        fs._by_key[self._key] = self

    @property
    def path_fd(self) -> int:
        """The inode's O_PATH descriptor: valid while the inode lives."""
        return self._fd

    def __del__(self, _close=os.close):
        fd, self._fd = getattr(self, "_fd", -1), -1
        if fd >= 0:
            try:
                _close(fd)
            except OSError:
                pass

    def __repr__(self) -> str:
        return f"<gofer {self.kind.name} ino={self._key[1]}>"

    # Attributes: the host's, at most one generation old. st_dev too: the guest's fstat on
    # its descriptor of this file is the kernel's, and the two must agree (tar, git and
    # find -xdev compare them).

    @property
    def dev(self) -> int:
        return self._stat().st_dev

    @property
    def host_key(self) -> tuple[int, int]:
        """The host identity (st_dev, st_ino) of this file, as of this syscall."""
        self._stat()
        return self._key

    def refresh(self) -> None:
        """Take the host stat again now (after a change the gofer made, such as a copy-up)."""
        self._refresh()

    def stat(self) -> os.stat_result:
        """The host's stat of this file, as of this syscall: what stat(2) answers."""
        return self._stat()

    def _stat(self) -> os.stat_result:
        if self._gen != self.fs.generation.value:
            return self._refresh()
        return self._st

    def _refresh(self) -> os.stat_result:
        """Takes the stat again now: after every change made through the gofer, which may
        also have given the file a new host identity (overlayfs copies up on a write open,
        chmod, chown, utimens, truncate, link, rename and setxattr). A released file keeps
        its last one."""
        if self.released:
            return self._st
        st = os.stat(self._fd)
        self._st, self._gen = st, self.fs.generation.value
        key = (st.st_dev, st.st_ino)
        if key != self._key:
            self.fs._rekey(self, key)
        return st

    @property
    def mode(self) -> int:
        return stat.S_IMODE(self._stat().st_mode)

    @property
    def uid(self) -> int:
        return self._stat().st_uid

    @property
    def gid(self) -> int:
        return self._stat().st_gid

    @property
    def nlink(self) -> int:
        return self._stat().st_nlink

    @property
    def size(self) -> int:
        return self._stat().st_size

    @property
    def ino(self) -> int:
        return self._stat().st_ino

    @property
    def atime_ns(self) -> int:
        return self._stat().st_atime_ns

    @property
    def mtime_ns(self) -> int:
        return self._stat().st_mtime_ns

    @property
    def ctime_ns(self) -> int:
        return self._stat().st_ctime_ns

    @property
    def rdev(self) -> int:
        return self._stat().st_rdev

    @property
    def blksize(self) -> int:
        return self._stat().st_blksize

    @property
    def blocks(self) -> int:
        return self._stat().st_blocks

    # Names.

    def _path(self) -> bytes:
        """The path from the mount's root: ENOENT once no known name leads here (unlinked)."""
        names = []
        node, root = self, self.fs.root
        while node is not root:
            if not node._links:
                raise error(errno.ENOENT)
            if len(names) > _MAX_DEPTH:
                raise error(errno.ESTALE)
            node, name = node._links[0]
            names.append(name)
        return b"/".join(reversed(names)) if names else b"."

    def _add_link(self, parent: "GoferDirectory", name: bytes) -> None:
        link = (parent, name)
        if self.kind is Kind.DIR:
            self._links = [link]  # one name: seen elsewhere, it moved
        elif link not in self._links:
            if len(self._links) >= _LINKS_KEPT:
                # The first gives the path; a forgotten one is found again by a lookup.
                del self._links[1]
            self._links.append(link)

    def _drop_link(self, parent: "GoferDirectory", name: bytes) -> None:
        self._links = [(p, n) for p, n in self._links if p is not parent or n != name]

    def _removed(self) -> None:
        """A name of this file was removed (unlink, or replaced by a rename): when it was the
        last, release it."""
        self._refresh()
        if self._st.st_nlink == 0 and self.kind is not Kind.DIR:
            self.release()

    def release(self) -> None:
        """Closes the descriptor of a file that has no name left. On Linux a watcher gets
        IN_DELETE_SELF and IN_IGNORED when the last reference to such a file goes, at the
        unlink when no one holds it open: this descriptor would otherwise be one for as long
        as a cache keeps the inode. The guest's own descriptors are the kernel's references,
        and keep the file as natively. The inode keeps its last stat (nlink 0); it has no
        path, so nothing opens or changes it through the gofer any more; and its host
        identity is no longer its own (the host may give it to a new file), so it leaves
        the identity index. (A directory keeps its descriptor: a task's cwd in a removed
        directory still climbs out of it through its dentry.)"""
        fs = self.fs
        self.released = True
        if fs._by_key.get(self._key) is self:
            del fs._by_key[self._key]
        fs._recent.pop(self, None)
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def _own(self, path: bytes, mode: int | None, uid: int, gid: int) -> None:
        """Gives a file the gofer just made the owner and mode the VFS chose. The gofer
        creates as itself; a chown it may not make (a gofer without CAP_CHOWN, an id its
        user namespace does not map) leaves the file as created, since it exists either way."""
        fs = self.fs
        st = self._refresh()
        if (st.st_uid, st.st_gid) != (uid, gid):
            try:
                fs.client.chown(fs.mount, path, uid, gid, follow=False)
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.EINVAL):
                    raise
            st = self._refresh()
        # Also after the host stripped S_ISGID (setgid directory) or chown S_ISUID.
        if mode is not None and stat.S_IMODE(st.st_mode) != mode:
            fs.client.chmod(fs.mount, path, mode)
            self._refresh()

    # Host descriptors.

    def open_host(self, flags: int) -> int:
        if flags & abi.O_PATH:
            flags = abi.O_PATH | flags & abi.O_DIRECTORY | abi.O_NOFOLLOW | abi.O_CLOEXEC
        elif self.kind is Kind.LNK:
            raise error(errno.ELOOP)
        elif self.kind is Kind.SOCK:
            raise error(errno.ENXIO)
        else:
            flags = flags & _HOST_OPEN | abi.O_NOFOLLOW | abi.O_CLOEXEC | abi.O_NOCTTY
        fs = self.fs
        fd = fs.client.open(fs.mount, self._path(), flags)
        try:
            st = os.fstat(fd)
            self._refresh()
            if (st.st_dev, st.st_ino) != self._key:
                # The name now leads to another file: changed on the host (a shared mount).
                raise error(errno.ESTALE)
        except BaseException:
            os.close(fd)
            raise
        return fd

    # Attributes.

    def setattr(self, *, mode=None, uid=None, gid=None, atime=None, mtime=None) -> None:
        if mode is not None and self.kind is Kind.LNK:
            raise error(errno.EOPNOTSUPP)
        for when in (atime, mtime):
            if when is not None and when[1] not in (abi.UTIME_NOW, abi.UTIME_OMIT) \
                    and not 0 <= when[1] < 1_000_000_000:
                raise error(errno.EINVAL)
        fs = self.fs
        path = self._path()
        # In Linux's order: chown (which may clear set-id bits), then the mode asked for.
        try:
            if uid is not None or gid is not None:
                fs.client.chown(fs.mount, path, -1 if uid is None else uid,
                                -1 if gid is None else gid, follow=False)
            if mode is not None:
                fs.client.chmod(fs.mount, path, mode & 0o7777)
            if atime is not None or mtime is not None:
                omit = (0, abi.UTIME_OMIT)
                fs.client.utimens(fs.mount, path, atime or omit, mtime or omit, follow=False)
        finally:
            self._refresh()

    def statfs(self) -> StatfsResult:
        try:
            path = self._path()
        except OSError:
            path = b"."  # unlinked: the same file system as the mount's root
        return self.fs.client.statfs(self.fs.mount, path)

    # Extended attributes, as the gofer allows them (user.* only reaches the host).

    def getxattr(self, name: bytes) -> bytes:
        return self.fs.client.getxattr(self.fs.mount, self._path(), name, follow=False)

    def setxattr(self, name: bytes, value: bytes, flags: int = 0) -> None:
        try:
            self.fs.client.setxattr(self.fs.mount, self._path(), name, value, flags,
                                    follow=False)
        finally:
            self._refresh()

    def listxattr(self) -> list[bytes]:
        return self.fs.client.listxattr(self.fs.mount, self._path(), follow=False)

    def removexattr(self, name: bytes) -> None:
        try:
            self.fs.client.removexattr(self.fs.mount, self._path(), name, follow=False)
        finally:
            self._refresh()


class GoferDirectory(GoferInode):
    def __init__(self, fs: GoferFS, fd: int, st: os.stat_result, kind: Kind):
        super().__init__(fs, fd, st, kind)
        # name -> the live inode known by it here; and, when exclusive, names known absent.
        self._children: weakref.WeakValueDictionary[bytes, GoferInode] = (
            weakref.WeakValueDictionary())
        self._negative: set[bytes] = set()

    def _child_path(self, name: bytes) -> bytes:
        if len(name) > abi.NAME_MAX:
            raise error(errno.ENAMETOOLONG)
        if not name or b"/" in name or b"\0" in name or name in (b".", b".."):
            raise error(errno.EINVAL)  # never from the VFS: a single plain component
        if self.dead:
            raise error(errno.ENOENT)
        path = self._path()
        return name if path == b"." else path + b"/" + name

    def _bind(self, name: bytes, inode: GoferInode) -> None:
        self._children[name] = inode
        self._negative.discard(name)
        inode._add_link(self, name)
        self.fs._touch(inode)

    def _unbind(self, name: bytes, *, absent: bool = True) -> GoferInode | None:
        """Forgets what `name` named here; `absent`: it now names nothing."""
        child = self._children.pop(name, None)
        if child is not None:
            child._drop_link(self, name)
        if absent and self.fs.exclusive:
            if len(self._negative) >= _NEGATIVE_MAX:
                self._negative.clear()
            self._negative.add(name)
        return child

    def _attach(self, name: bytes, fd: int) -> GoferInode:
        """The inode for the descriptor the gofer just opened for `name` (taking it): the
        one already known by this name or by the file's host identity, else a new one."""
        fs = self.fs
        try:
            st = os.stat(fd)
        except BaseException:
            os.close(fd)
            raise
        key = (st.st_dev, st.st_ino)
        inode = self._children.get(name)
        if inode is None or inode._key != key:
            if inode is not None:
                self._unbind(name, absent=False)  # replaced behind our back
            inode = fs._by_key.get(key)
            if inode is not None and inode.kind is not _KINDS.get(stat.S_IFMT(st.st_mode)):
                inode = None
        if inode is None:
            inode = fs._make(fd)
        else:
            os.close(fd)
            inode._st, inode._gen = st, fs.generation.value
        self._bind(name, inode)
        return inode

    def lookup(self, name: bytes) -> GoferInode | None:
        if len(name) > abi.NAME_MAX:
            raise error(errno.ENAMETOOLONG)
        if self.dead:
            return None
        fs = self.fs
        live = fs._live.get(self._key) if fs._live else None
        if live is not None:
            stands_for = live.get(name)
            if stands_for is not None:
                return stands_for
        elif fs.exclusive:
            if name in self._negative:
                return None
            child = self._children.get(name)
            if child is not None:
                fs._touch(child)
                return child
        try:
            fd = self._open_child(name)
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise
            self._unbind(name)
            return None
        return self._attach(name, fd)

    def _open_child(self, name: bytes) -> int:
        """An O_PATH descriptor for `name` here: opened beneath this directory's own
        descriptor with directfs, else (or if that is refused) by the gofer."""
        fs = self.fs
        path = self._child_path(name)
        if fs.direct:
            try:
                return open_beneath(self._fd, name, _O_PATH)
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.ENOTDIR):
                    raise
        return fs.client.open(fs.mount, path, _O_PATH)

    def readdir(self) -> list[tuple[bytes, GoferInode]]:
        """Every entry with its inode: one gofer listing, and a lookup per name not cached
        (the guest's getdents runs on its host descriptor; this serves the Sentry)."""
        if self.dead:
            return []
        fs = self.fs
        out = []
        for entry in fs.client.listdir_all(fs.mount, self._path()):
            child = self.lookup(entry.name)
            if child is not None:
                out.append((entry.name, child))
        return out

    def _created(self, name: bytes, path: bytes, mode: int | None, uid: int,
                 gid: int) -> GoferInode:
        inode = self._attach(name, self._open_child(name))
        inode._own(path, mode, uid, gid)
        self._refresh()
        return inode

    def create(self, name: bytes, kind: Kind, mode: int, uid: int, gid: int, *,
               make_file=None) -> GoferInode:
        """`make_file(mode)`, for a regular file: makes it instead of the gofer's own
        O_CREAT|O_EXCL open here, as the open of the caller's that created it."""
        fs, path, mode = self.fs, self._child_path(name), mode & 0o7777
        if fs.host_shared and kind is not Kind.DIR:
            mode &= ~(stat.S_ISUID | stat.S_ISGID)
        if kind is Kind.DIR:
            fs.client.mkdir(fs.mount, path, mode)
        elif kind is Kind.REG and make_file is not None:
            make_file(mode)
        elif kind is Kind.REG:
            os.close(fs.client.open(fs.mount, path, abi.O_RDONLY | abi.O_CREAT | abi.O_EXCL
                                    | abi.O_NOFOLLOW | abi.O_CLOEXEC, mode))
        elif kind in (Kind.FIFO, Kind.SOCK):
            fs.client.mknod(fs.mount, path, kind | mode)
        else:
            raise error(errno.EINVAL)
        return self._created(name, path, mode, uid, gid)

    def symlink(self, name: bytes, target: bytes, uid: int, gid: int) -> GoferInode:
        fs, path = self.fs, self._child_path(name)
        fs.client.symlink(fs.mount, target, path)
        return self._created(name, path, None, uid, gid)

    def link(self, name: bytes, inode: Inode) -> None:
        if not isinstance(inode, GoferInode) or inode.fs is not self.fs:
            raise error(errno.EXDEV)
        if inode.is_dir:
            raise error(errno.EPERM)
        fs, path = self.fs, self._child_path(name)
        fs.client.link(fs.mount, inode._path(), fs.mount, path)
        self._bind(name, inode)
        inode._refresh()
        self._refresh()

    def unlink(self, name: bytes) -> None:
        fs = self.fs
        fs.client.unlink(fs.mount, self._child_path(name))
        child = self._unbind(name)
        if child is not None:
            child._removed()
        self._refresh()

    def rmdir(self, name: bytes) -> None:
        fs = self.fs
        fs.client.rmdir(fs.mount, self._child_path(name))
        child = self._unbind(name)
        if child is not None:
            child.dead = True
            child._refresh()
        self._refresh()

    def rename(self, old_name: bytes, new_dir: Inode, new_name: bytes, flags: int = 0) -> None:
        if not isinstance(new_dir, GoferDirectory) or new_dir.fs is not self.fs:
            raise error(errno.EXDEV)
        fs = self.fs
        old_path, new_path = self._child_path(old_name), new_dir._child_path(new_name)
        source = self._children.get(old_name) or self.lookup(old_name)
        target = new_dir._children.get(new_name)
        if target is None and source is not None and source.nlink > 1:
            target = new_dir.lookup(new_name)  # two names of one file: rename does nothing
        fs.client.rename(fs.mount, old_path, fs.mount, new_path, flags)
        if source is not None and source is target:
            return
        if flags & abi.RENAME_EXCHANGE:
            self._unbind(old_name, absent=False)
            new_dir._unbind(new_name, absent=False)
            if target is not None:
                self._bind(old_name, target)
        else:
            new_dir._unbind(new_name, absent=False)
            if target is not None and target.is_dir:
                target.dead = True
            self._unbind(old_name)
        if source is not None:
            new_dir._bind(new_name, source)
        for inode in {self, new_dir, source} - {None}:
            inode._refresh()
        if target is not None:
            if flags & abi.RENAME_EXCHANGE:
                target._refresh()
            else:
                target._removed()


class GoferFile(GoferInode):
    """A regular file. The guest reads and writes through its own host descriptors; read and
    write here open one for the call (the Sentry's own, rare, accesses)."""

    def read(self, offset: int, size: int) -> bytes:
        return read_through_host(self, offset, size)

    def write(self, offset: int, data: bytes) -> int:
        if offset < 0:
            raise error(errno.EINVAL)
        fd = self.open_host(abi.O_WRONLY)
        try:
            return os.pwrite(fd, data, offset) if data else 0
        finally:
            os.close(fd)
            self._refresh()

    def truncate(self, size: int, *, touch: bool = False) -> None:
        if size < 0:
            raise error(errno.EINVAL)
        if size == self.size and not touch:
            return  # truncate(2) to the same size changes nothing, times included
        fs = self.fs
        try:
            fs.client.truncate(fs.mount, self._path(), size)  # always stamps, as O_TRUNC
        finally:
            self._refresh()


class GoferSymlink(GoferInode):
    _target: bytes | None = None

    def readlink(self) -> bytes:
        # From the inode's own descriptor, locally: a symlink's body never changes, and a
        # path could meanwhile name another one.
        if self._target is None:
            self._target = os.readlink(b"", dir_fd=self._fd)
        return self._target
