"""tmpfs: a file system held in the Sentry's memory, after Linux's mm/shmem.c.

Its numbers follow Linux's tmpfs where a program can see them: inode numbers count from 1
(the root), a directory's nlink is 2 plus its subdirectories, and its size is 20 bytes
(BOGO_DIRENT_SIZE) per entry plus 40 for '.' and '..'. A symlink's size is its target's length.

File data is a bytearray behind read/write/truncate, so it can move elsewhere (a memfd the
guest maps directly) without the rest of the Sentry noticing; until then it has no host
descriptors to give (open_host: EOPNOTSUPP). No extended attributes, as a tmpfs built
without CONFIG_TMPFS_XATTR (the Inode defaults: EOPNOTSUPP, and an empty list).
"""

import errno
import itertools
import os
import stat
import time

from ... import abi
from ...gofer.protocol import StatfsResult
from ..vfs.errors import error
from ..vfs.inode import Inode, Kind
from . import anon_dev

_BOGO_DIRENT_SIZE = 20
_TMPFS_MAGIC = 0x01021994
_PAGE_SIZE = 4096
_NSEC = 1_000_000_000
# Linux stores a tmpfs symlink target in one page, NUL included.
_MAX_SYMLINK = abi.PATH_MAX - 1


class Tmpfs:
    """One tmpfs instance (a superblock): its device number, inode numbers and root."""

    def __init__(self, *, mode: int = 0o1777, uid: int = 0, gid: int = 0, clock=time.time_ns):
        self.dev = anon_dev()
        self.clock = clock
        self._inos = itertools.count(1)
        self.root = Directory(self, mode, uid, gid, parent=None)

    def next_ino(self) -> int:
        return next(self._inos)


class _Node(Inode):
    def __init__(self, fs: Tmpfs, kind: Kind, mode: int, uid: int, gid: int):
        self.fs = fs
        self.kind = kind
        self.mode = mode & 0o7777
        self.uid = uid
        self.gid = gid
        self.nlink = 1
        self.size = 0
        self.ino = fs.next_ino()
        self.dev = fs.dev
        self.atime_ns = self.mtime_ns = self.ctime_ns = fs.clock()

    def __repr__(self) -> str:
        return f"<tmpfs {self.kind.name} ino={self.ino}>"

    def _changed(self, now: int) -> None:
        self.ctime_ns = now

    def setattr(self, *, mode=None, uid=None, gid=None, atime=None, mtime=None) -> None:
        if mode is not None and self.kind is Kind.LNK:
            raise error(errno.EOPNOTSUPP)
        for when in (atime, mtime):
            if when is not None and when[1] not in (abi.UTIME_NOW, abi.UTIME_OMIT) \
                    and not 0 <= when[1] < _NSEC:
                raise error(errno.EINVAL)
        now = self.fs.clock()
        if uid is not None or gid is not None:
            self.uid = self.uid if uid is None else uid
            self.gid = self.gid if gid is None else gid
            if self.kind is not Kind.DIR:
                self.mode &= ~stat.S_ISUID
                if self.mode & stat.S_IXGRP:
                    self.mode &= ~stat.S_ISGID
        if mode is not None:
            self.mode = mode & 0o7777
        self.set_times(atime, mtime, now)

    def statfs(self) -> StatfsResult:
        # An instance without size= or nr_inodes= (Linux's shmem_statfs): no block or inode
        # counts at all. The fsid is the encoded device number (huge_encode_dev).
        major, minor = os.major(self.fs.dev), os.minor(self.fs.dev)
        fsid = (minor & 0xFF) | (major << 8) | ((minor & ~0xFF) << 12)
        return StatfsResult(_TMPFS_MAGIC, _PAGE_SIZE, 0, 0, 0, 0, 0, fsid & 0xFFFFFFFF,
                            fsid >> 32, abi.NAME_MAX, _PAGE_SIZE, 0)


class Directory(_Node):
    def __init__(self, fs: Tmpfs, mode: int, uid: int, gid: int, parent: "Directory | None"):
        super().__init__(fs, Kind.DIR, mode, uid, gid)
        self.nlink = 2
        self.size = 2 * _BOGO_DIRENT_SIZE
        # The directory holding this one: a directory has one name, so moving it into its
        # own subtree can be refused here as well as in the VFS.
        self.parent = parent
        self.entries: dict[bytes, _Node] = {}

    def lookup(self, name: bytes) -> Inode | None:
        if len(name) > abi.NAME_MAX:
            raise error(errno.ENAMETOOLONG)
        return self.entries.get(name)

    def readdir(self) -> list[tuple[bytes, Inode]]:
        return list(self.entries.items())

    def create(self, name: bytes, kind: Kind, mode: int, uid: int, gid: int) -> Inode:
        if kind is Kind.DIR:
            node = Directory(self.fs, mode, uid, gid, parent=self)
        elif kind is Kind.REG:
            node = RegularFile(self.fs, mode, uid, gid)
        elif kind in (Kind.FIFO, Kind.SOCK):
            node = _Node(self.fs, kind, mode, uid, gid)
        else:
            raise error(errno.EINVAL)
        self._add(name, node)
        if kind is Kind.DIR:
            self.nlink += 1
        return node

    def symlink(self, name: bytes, target: bytes, uid: int, gid: int) -> Inode:
        if len(target) > _MAX_SYMLINK:
            raise error(errno.ENAMETOOLONG)
        node = Symlink(self.fs, target, uid, gid)
        self._add(name, node)
        return node

    def link(self, name: bytes, inode: Inode) -> None:
        if not isinstance(inode, _Node) or inode.fs is not self.fs:
            raise error(errno.EXDEV)
        if inode.is_dir:
            raise error(errno.EPERM)
        self._add(name, inode)
        inode.nlink += 1

    def unlink(self, name: bytes) -> None:
        node = self._get(name)
        if node.is_dir:
            raise error(errno.EISDIR)
        self._remove(name, node)

    def rmdir(self, name: bytes) -> None:
        node = self._get(name)
        if not node.is_dir:
            raise error(errno.ENOTDIR)
        if node.entries:
            raise error(errno.ENOTEMPTY)
        self._remove(name, node)
        node.nlink = 0
        node.dead = True
        self.nlink -= 1

    def rename(self, old_name: bytes, new_dir: Inode, new_name: bytes, flags: int = 0) -> None:
        if flags & ~(abi.RENAME_NOREPLACE | abi.RENAME_EXCHANGE):
            raise error(errno.EINVAL)  # RENAME_WHITEOUT needs device nodes, which we lack
        if flags == abi.RENAME_NOREPLACE | abi.RENAME_EXCHANGE:
            raise error(errno.EINVAL)
        if not isinstance(new_dir, Directory) or new_dir.fs is not self.fs:
            raise error(errno.EXDEV)
        new_dir.lookup(new_name)  # the name's length
        source = self._get(old_name)
        target = new_dir.entries.get(new_name)
        if flags & abi.RENAME_EXCHANGE:
            if target is None:
                raise error(errno.ENOENT)
        elif flags & abi.RENAME_NOREPLACE and target is not None:
            raise error(errno.EEXIST)
        if source is target:
            return
        if source.is_dir and new_dir._within(source):
            raise error(errno.EINVAL)
        if flags & abi.RENAME_EXCHANGE:
            if target.is_dir and self._within(target):
                raise error(errno.EINVAL)
            self._exchange(old_name, source, new_dir, new_name, target)
            return
        if target is not None:
            if source.is_dir and not target.is_dir:
                raise error(errno.ENOTDIR)
            if not source.is_dir and target.is_dir:
                raise error(errno.EISDIR)
            if target.is_dir and target.entries:
                raise error(errno.ENOTEMPTY)
        now = self.fs.clock()
        if target is not None:
            new_dir._remove(new_name, target, now)
            if target.is_dir:
                target.nlink = 0
                target.dead = True
                new_dir.nlink -= 1
        del self.entries[old_name]
        self.size -= _BOGO_DIRENT_SIZE
        new_dir.entries[new_name] = source
        new_dir.size += _BOGO_DIRENT_SIZE
        if source.is_dir:
            self.nlink -= 1
            new_dir.nlink += 1
            source.parent = new_dir
        self._stamp_rename(new_dir, now)
        source._changed(now)

    def _exchange(self, old_name, source, new_dir, new_name, target) -> None:
        self.entries[old_name], new_dir.entries[new_name] = target, source
        if source.is_dir:
            source.parent = new_dir
        if target.is_dir:
            target.parent = self
        if source.is_dir != target.is_dir:
            moved_in = 1 if source.is_dir else -1
            new_dir.nlink += moved_in
            self.nlink -= moved_in
        now = self.fs.clock()
        self._stamp_rename(new_dir, now)
        source._changed(now)
        target._changed(now)

    def _stamp_rename(self, new_dir: "Directory", now: int) -> None:
        self.mtime_ns = self.ctime_ns = now
        new_dir.mtime_ns = new_dir.ctime_ns = now

    def _within(self, ancestor: "Directory") -> bool:
        """True if this directory is `ancestor` or lies below it."""
        d = self
        while d is not None:
            if d is ancestor:
                return True
            d = d.parent
        return False

    def _get(self, name: bytes) -> _Node:
        node = self.lookup(name)
        if node is None:
            raise error(errno.ENOENT)
        return node

    def _add(self, name: bytes, node: _Node) -> None:
        if self.dead:
            raise error(errno.ENOENT)
        if self.lookup(name) is not None:
            raise error(errno.EEXIST)
        self.entries[name] = node
        self.size += _BOGO_DIRENT_SIZE
        now = self.fs.clock()
        self.mtime_ns = self.ctime_ns = now
        node._changed(now)

    def _remove(self, name: bytes, node: _Node, now: int | None = None) -> None:
        del self.entries[name]
        self.size -= _BOGO_DIRENT_SIZE
        now = self.fs.clock() if now is None else now
        self.mtime_ns = self.ctime_ns = now
        node.nlink -= 1
        node._changed(now)


class RegularFile(_Node):
    def __init__(self, fs: Tmpfs, mode: int, uid: int, gid: int):
        super().__init__(fs, Kind.REG, mode, uid, gid)
        self._data = bytearray()

    def read(self, offset: int, size: int) -> bytes:
        if offset < 0 or size < 0:
            raise error(errno.EINVAL)
        return bytes(self._data[offset:offset + size])

    def write(self, offset: int, data: bytes) -> int:
        if offset < 0:
            raise error(errno.EINVAL)
        if not data:
            return 0
        end = offset + len(data)
        if end > len(self._data):
            self._data.extend(bytes(end - len(self._data)))
        self._data[offset:end] = data
        self.size = len(self._data)
        self.mtime_ns = self.ctime_ns = self.fs.clock()
        return len(data)

    def truncate(self, size: int, *, touch: bool = False) -> None:
        if size < 0:
            raise error(errno.EINVAL)
        changed = size != len(self._data)
        if size < len(self._data):
            del self._data[size:]
        else:
            self._data.extend(bytes(size - len(self._data)))
        self.size = size
        if changed or touch:
            self.mtime_ns = self.ctime_ns = self.fs.clock()


class Symlink(_Node):
    def __init__(self, fs: Tmpfs, target: bytes, uid: int, gid: int):
        super().__init__(fs, Kind.LNK, 0o777, uid, gid)
        self._target = bytes(target)
        self.size = len(target)

    def readlink(self) -> bytes:
        return self._target

