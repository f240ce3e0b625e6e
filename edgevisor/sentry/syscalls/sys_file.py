"""File system calls: every path the guest names is resolved here, in the Sentry's VFS.

A call that yields a descriptor answers with InstallFd: the file system of the mount made a
host descriptor for the file (the gofer opened it beneath the mount's root, or a synthetic
file system generated it), and the platform installs it in the task's table, so that I/O
on it runs natively. Calls on a descriptor the kernel already answers rightly (read, write,
ftruncate ...) pass through; those that must agree with the Sentry's view of a synthetic
file (fstat, getdents64, fstatfs, fchdir) are trapped and handed back to the kernel for
every other descriptor. Those that change a file's metadata (fchmod, fchown, fsetxattr,
fremovexattr) are made here, on files the guest opened in its own view only (`_own_file`).

chdir, fchdir, chroot, execve, execveat and inotify_add_watch are decided here and then run
by the kernel, which reads the path again and resolves it in the guest's host
view: that view mirrors the Sentry's mount tree with the same host objects, so the kernel
finds the file the Sentry checked, and a path another thread rewrites in between can only name
something in that same view, which holds nothing the Sentry hides (its /proc has task
directories only; see platform/isolation.py's enter_view and docs/architecture.md). A fifo's
open is the Sentry's own (kernel/fifo.py), since the kernel's would show it /proc files it
renders itself.
"""

import errno
import os
import resource
import signal
import stat
import struct

from ... import abi
from ..answers import CONTINUE, InstallFd
from ..fsimpl.proc import OutsideVFS
from ..kernel.fs import int32
from ..vfs import (
    MAY_EXEC,
    MAY_READ,
    MAY_WRITE,
    Kind,
    chdir,
    d_path,
    linkat,
    lookup,
    mkdirat,
    mknodat,
    openat,
    permission,
    renameat2,
    rmdirat,
    symlinkat,
    unlinkat,
)
from ..vfs.errors import error
from ..vfs.permission import owner_or_capable
from ...platform.linux import syscall

_PATH_MAX = abi.PATH_MAX
_AT_FDCWD = abi.AT_FDCWD
_AT_EMPTY_PATH = abi.AT_EMPTY_PATH
_AT_SYMLINK_NOFOLLOW = abi.AT_SYMLINK_NOFOLLOW
_UTIME_NOW = abi.UTIME_NOW
_UTIME_OMIT = abi.UTIME_OMIT

# open(2) flags the kernel knows (VALID_OPEN_FLAGS); openat2 refuses any other bit.
_VALID_OPEN = (abi.O_ACCMODE | abi.O_CREAT | abi.O_EXCL | abi.O_NOCTTY | abi.O_TRUNC
               | abi.O_APPEND | abi.O_NONBLOCK | os.O_DSYNC | 0o20000 | os.O_DIRECT
               | os.O_LARGEFILE | abi.O_DIRECTORY | abi.O_NOFOLLOW | abi.O_NOATIME
               | abi.O_CLOEXEC | abi.O_PATH | abi.O_TMPFILE_BIT | os.O_SYNC)
_OPEN_HOW = abi.OPEN_HOW
_DEV_TTY = os.makedev(5, 0)
_NOT_TO_HOST = abi.O_CREAT | abi.O_EXCL | abi.O_TRUNC | abi.O_CLOEXEC | abi.O_NOCTTY


def _path(t, addr: int) -> bytes:
    return t.mem.read_cstring(addr, _PATH_MAX)


def _at(k, t, dirfd: int, path: bytes, *, umask: bool = False, scoped: bool = False):
    """(ctx, start) for a path argument relative to `dirfd`; `scoped` (RESOLVE_BENEATH,
    RESOLVE_IN_ROOT) makes even an absolute path start there."""
    fs = k.fs
    start = fs.start(t, dirfd) if scoped or path[:1] != b"/" else None
    ctx = fs.context(t, b"/" if start is not None else b"" if scoped else path, umask=umask)
    return ctx, start


def _at2(k, t, olddirfd: int, old: bytes, newdirfd: int, new: bytes):
    """(ctx, old start, new start) for the calls that take two paths (link, rename)."""
    fs = k.fs
    ostart = fs.start(t, olddirfd) if old[:1] != b"/" else None
    nstart = fs.start(t, newdirfd) if new[:1] != b"/" else None
    cwd_needed = (ostart is None and old[:1] != b"/") or (nstart is None and new[:1] != b"/")
    return fs.context(t, b"" if cwd_needed else b"/"), ostart, nstart


# --- open ------------------------------------------------------------------------------

def _open(k, t, dirfd: int, path: bytes, flags: int, mode: int, resolve_flags: int = 0):
    fs = k.fs
    ctx, start = _at(k, t, dirfd, path, umask=bool(flags & (abi.O_CREAT | abi.O_TMPFILE_BIT)),
                     scoped=bool(resolve_flags & (abi.RESOLVE_BENEATH | abi.RESOLVE_IN_ROOT)))
    if flags & abi.O_TMPFILE_BIT:
        return _tmpfile(fs, ctx, start, path, flags, mode, resolve_flags)
    host_flags = flags & ~_NOT_TO_HOST
    # A file O_CREAT makes is made by the open the guest gets (kernel/fs.py's CreatingOpen).
    created = fs.creating(host_flags) if flags & abi.O_CREAT else None
    try:
        dentry = openat(ctx, fs.creds, start, path, flags, mode, resolve_flags=resolve_flags,
                        create=created)
    except OutsideVFS as e:
        # /proc/PID/fd/N (/dev/stdout ...) of a pipe or socket: reopened as Linux does.
        reopen = getattr(e.link, "reopen", None)
        if reopen is None:
            raise
        return InstallFd(reopen(host_flags), bool(flags & abi.O_CLOEXEC))
    if flags & abi.O_PATH:
        host_flags = abi.O_PATH | (flags & abi.O_DIRECTORY)
    elif dentry.inode.kind is Kind.FIFO and fs.is_host_file(dentry.inode):
        # Its open may wait for its peer: the platform waits for it in a thread of its own.
        return fs.open_fifo(dentry, host_flags, bool(flags & abi.O_CLOEXEC))
    elif dentry.inode.kind is Kind.CHR and dentry.inode.rdev == _DEV_TTY:
        return InstallFd(fs.controlling_terminal(t, host_flags), bool(flags & abi.O_CLOEXEC))
    return InstallFd(fs.open(dentry, host_flags, created), bool(flags & abi.O_CLOEXEC))


def _tmpfile(fs, ctx, start, path, flags, mode, resolve_flags):
    """O_TMPFILE: an unnamed file in the directory `path`, made by the host file system
    there (Linux's vfs_tmpfile checks, then the gofer's open). Linking it into the tree
    later (linkat with AT_EMPTY_PATH or through /proc/self/fd) is not supported."""
    if flags & (abi.O_CREAT | abi.O_DIRECTORY) != abi.O_DIRECTORY:
        raise error(errno.EINVAL)
    if flags & abi.O_ACCMODE not in (abi.O_WRONLY, abi.O_RDWR):
        raise error(errno.EINVAL)
    dentry = lookup(ctx, fs.creds, start, path, must_dir=True, resolve_flags=resolve_flags)
    permission(fs.creds, dentry.inode, MAY_WRITE | MAY_EXEC)
    dentry.mount.want_write()
    host = fs.open_tmpfile(dentry, flags & ~_NOT_TO_HOST, mode & ~ctx.umask & 0o7777)
    return InstallFd(host, bool(flags & abi.O_CLOEXEC))


def sys_open(k, t, a):
    return _open(k, t, _AT_FDCWD, _path(t, a[0]), int32(a[1]) | os.O_LARGEFILE, a[2] & 0o7777)


def sys_openat(k, t, a):
    return _open(k, t, a[0], _path(t, a[1]), int32(a[2]) | os.O_LARGEFILE, a[3] & 0o7777)


def sys_creat(k, t, a):
    return _open(k, t, _AT_FDCWD, _path(t, a[0]),
                 abi.O_CREAT | abi.O_WRONLY | abi.O_TRUNC | os.O_LARGEFILE, a[1] & 0o7777)


def sys_openat2(k, t, a):
    size = a[3]
    if size < _OPEN_HOW.size:
        raise error(errno.EINVAL)
    if size > 4096:
        raise error(errno.E2BIG)
    raw = t.mem.read(a[2], size)
    if any(raw[_OPEN_HOW.size:]):
        raise error(errno.E2BIG)
    flags, mode, how = _OPEN_HOW.unpack_from(raw)
    if flags & ~_VALID_OPEN or flags >> 32:
        raise error(errno.EINVAL)
    if mode & ~0o7777 or (mode and not flags & (abi.O_CREAT | abi.O_TMPFILE_BIT)):
        raise error(errno.EINVAL)
    if flags & abi.O_PATH and flags & ~(abi.O_PATH | abi.O_DIRECTORY | abi.O_NOFOLLOW
                                        | abi.O_CLOEXEC):
        raise error(errno.EINVAL)
    return _open(k, t, a[0], _path(t, a[1]), flags, mode, how)


# --- stat ------------------------------------------------------------------------------

if os.uname().machine == "x86_64":
    _STAT = struct.Struct("=QQQIIIIQqqqqqqqqq24x")

    def _pack_stat(st) -> bytes:
        return _STAT.pack(st.st_dev, st.st_ino, st.st_nlink, st.st_mode, st.st_uid,
                          st.st_gid, 0, st.st_rdev, st.st_size, st.st_blksize, st.st_blocks,
                          *_ts(st.st_atime_ns), *_ts(st.st_mtime_ns), *_ts(st.st_ctime_ns))
else:  # the generic struct stat of arm64
    _STAT = struct.Struct("=QQIIIIQQqiiqqqqqqq8x")

    def _pack_stat(st) -> bytes:
        return _STAT.pack(st.st_dev, st.st_ino, st.st_mode, st.st_nlink, st.st_uid,
                          st.st_gid, st.st_rdev, 0, st.st_size, st.st_blksize, 0,
                          st.st_blocks, *_ts(st.st_atime_ns), *_ts(st.st_mtime_ns),
                          *_ts(st.st_ctime_ns))

_STATX = struct.Struct("=IIQIIIHxxQQQQ" + "qIxxxx" * 4 + "IIIIQ")
_STATX_BASIC_STATS = 0x7FF


def _ts(ns: int) -> tuple[int, int]:
    return divmod(ns, 1_000_000_000)


class _Stat:
    """A stat result built from an inode, with the fields os.stat_result has."""

    __slots__ = ("st_atime_ns", "st_blksize", "st_blocks", "st_ctime_ns", "st_dev", "st_gid",
                 "st_ino", "st_mode", "st_mtime_ns", "st_nlink", "st_rdev", "st_size",
                 "st_uid")

    def __init__(self, inode):
        self.st_dev = inode.dev
        self.st_ino = inode.ino
        self.st_mode = inode.st_mode
        self.st_nlink = inode.nlink
        self.st_uid = inode.uid
        self.st_gid = inode.gid
        self.st_rdev = getattr(inode, "rdev", 0)
        self.st_size = inode.size
        self.st_blksize = getattr(inode, "blksize", 4096)
        self.st_blocks = getattr(inode, "blocks", (inode.size + 511) // 512)
        self.st_atime_ns = inode.atime_ns
        self.st_mtime_ns = inode.mtime_ns
        self.st_ctime_ns = inode.ctime_ns


def _stat_of(k, t, dirfd: int, addr: int, flags: int):
    """The stat of what (dirfd, path, flags) names, for stat, newfstatat and statx. An
    empty path with AT_EMPTY_PATH is the descriptor itself: the kernel's answer unless it
    is a synthetic file (CONTINUE otherwise, from the callers that can)."""
    if flags & ~(_AT_SYMLINK_NOFOLLOW | _AT_EMPTY_PATH | abi.AT_NO_AUTOMOUNT | 0x6000):
        raise error(errno.EINVAL)
    path = _path(t, addr) if addr or not flags & _AT_EMPTY_PATH else b""
    if not path:
        if not flags & _AT_EMPTY_PATH:
            raise error(errno.ENOENT)
        dirfd = int32(dirfd)
        if dirfd == _AT_FDCWD:
            return _Stat(k.fs.cwd(t).inode)
        st, _, inode = k.fs.descriptor(t, dirfd)
        return st if inode is None else _Stat(inode)
    ctx, start = _at(k, t, dirfd, path)
    inode = lookup(ctx, k.fs.creds, start, path, follow=not flags & _AT_SYMLINK_NOFOLLOW).inode
    host_stat = getattr(inode, "stat", None)  # a host file's own stat, all fields at once
    return _Stat(inode) if host_stat is None else host_stat()


def sys_stat(k, t, a):
    t.mem.write(a[1], _pack_stat(_stat_of(k, t, _AT_FDCWD, a[0], 0)))
    return 0


def sys_lstat(k, t, a):
    t.mem.write(a[1], _pack_stat(_stat_of(k, t, _AT_FDCWD, a[0], _AT_SYMLINK_NOFOLLOW)))
    return 0


def sys_newfstatat(k, t, a):
    t.mem.write(a[2], _pack_stat(_stat_of(k, t, a[0], a[1], int32(a[3]))))
    return 0


def sys_fstat(k, t, a):
    _, _, inode = k.fs.descriptor(t, int32(a[0]))
    if inode is None:
        return CONTINUE
    t.mem.write(a[1], _pack_stat(_Stat(inode)))
    return 0


def sys_statx(k, t, a):
    flags = int32(a[2])
    if flags & 0x6000 == 0x6000:  # AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC
        raise error(errno.EINVAL)
    if a[3] & 0x80000000:  # STATX__RESERVED
        raise error(errno.EINVAL)
    st = _stat_of(k, t, a[0], a[1], flags)
    mode = st.st_mode
    t.mem.write(a[4], _STATX.pack(
        _STATX_BASIC_STATS, st.st_blksize, 0, st.st_nlink, st.st_uid, st.st_gid, mode,
        st.st_ino, st.st_size, st.st_blocks, 0,
        *_ts(st.st_atime_ns), 0, 0, *_ts(st.st_ctime_ns), *_ts(st.st_mtime_ns),
        os.major(st.st_rdev), os.minor(st.st_rdev), os.major(st.st_dev), os.minor(st.st_dev),
        0).ljust(256, b"\0"))
    return 0


# --- access, readlink ------------------------------------------------------------------

def _access(k, t, dirfd: int, addr: int, mode: int, flags: int) -> int:
    if mode & ~7:
        raise error(errno.EINVAL)
    if flags & ~(abi.AT_EACCESS | _AT_SYMLINK_NOFOLLOW | _AT_EMPTY_PATH):
        raise error(errno.EINVAL)
    path = _path(t, addr)
    if not path and flags & _AT_EMPTY_PATH:
        _, dentry, inode = k.fs.descriptor(t, int32(dirfd))
        inode = inode if inode is not None else dentry.inode if dentry else None
        if inode is None:
            return 0
    else:
        ctx, start = _at(k, t, dirfd, path)
        dentry = lookup(ctx, k.fs.creds, start, path, follow=not flags & _AT_SYMLINK_NOFOLLOW)
        inode = dentry.inode
        if mode & 2 and inode.kind in (Kind.REG, Kind.DIR, Kind.LNK):
            dentry.mount.want_write()
    if mode:
        mask = (MAY_READ if mode & 4 else 0) | (MAY_WRITE if mode & 2 else 0) \
            | (MAY_EXEC if mode & 1 else 0)
        permission(k.fs.creds, inode, mask)
    return 0


def sys_access(k, t, a):
    return _access(k, t, _AT_FDCWD, a[0], int32(a[1]), 0)


def sys_faccessat(k, t, a):
    return _access(k, t, a[0], a[1], int32(a[2]), 0)


def sys_faccessat2(k, t, a):
    return _access(k, t, a[0], a[1], int32(a[2]), int32(a[3]))


def _readlink(k, t, dirfd: int, addr: int, buf: int, size: int) -> int:
    size = int32(size)
    if size <= 0:
        raise error(errno.EINVAL)
    path = _path(t, addr)
    if not path:
        # Linux: an empty path is the descriptor itself (the cwd for AT_FDCWD), and anything
        # but a symlink (opened O_PATH) is ENOENT, not the EINVAL of a named non-link.
        dirfd = int32(dirfd)
        if dirfd == _AT_FDCWD:
            raise error(errno.ENOENT)
        _, dentry, _ = k.fs.descriptor(t, dirfd)
        if dentry is None or not dentry.inode.is_symlink:
            raise error(errno.ENOENT)
    else:
        ctx, start = _at(k, t, dirfd, path)
        dentry = lookup(ctx, k.fs.creds, start, path, follow=False)
    target = dentry.inode.readlink()
    data = target[:size]
    t.mem.write(buf, data)
    return len(data)


def sys_readlink(k, t, a):
    return _readlink(k, t, _AT_FDCWD, a[0], a[1], a[2])


def sys_readlinkat(k, t, a):
    return _readlink(k, t, a[0], a[1], a[2], a[3])


# --- names: mkdir, mknod, symlink, link, unlink, rmdir, rename ------------------------------

def _mkdir(k, t, dirfd, addr, mode) -> int:
    path = _path(t, addr)
    ctx, start = _at(k, t, dirfd, path, umask=True)
    mkdirat(ctx, k.fs.creds, start, path, mode)
    return 0


def sys_mkdir(k, t, a):
    return _mkdir(k, t, _AT_FDCWD, a[0], int32(a[1]))


def sys_mkdirat(k, t, a):
    return _mkdir(k, t, a[0], a[1], int32(a[2]))


_MKNOD_KINDS = {0: Kind.REG, stat.S_IFREG: Kind.REG, stat.S_IFIFO: Kind.FIFO,
                stat.S_IFSOCK: Kind.SOCK}


def _mknod(k, t, dirfd, addr, mode) -> int:
    fmt = stat.S_IFMT(mode)
    if fmt in (stat.S_IFCHR, stat.S_IFBLK):
        # No device nodes: /dev is the Sentry's (what Docker's default profile gives too,
        # without CAP_MKNOD).
        raise error(errno.EPERM)
    if fmt == stat.S_IFDIR:
        raise error(errno.EPERM)
    kind = _MKNOD_KINDS.get(fmt)
    if kind is None:
        raise error(errno.EINVAL)
    path = _path(t, addr)
    ctx, start = _at(k, t, dirfd, path, umask=True)
    mknodat(ctx, k.fs.creds, start, path, kind, mode & 0o7777)
    return 0


# The kernel takes mknod's mode as a umode_t: the register's low 16 bits.
_UMODE_MASK = 0xFFFF


def sys_mknod(k, t, a):
    return _mknod(k, t, _AT_FDCWD, a[0], a[1] & _UMODE_MASK)


def sys_mknodat(k, t, a):
    return _mknod(k, t, a[0], a[1], a[2] & _UMODE_MASK)


def _symlink(k, t, target_addr, dirfd, addr) -> int:
    target = _path(t, target_addr)
    path = _path(t, addr)
    ctx, start = _at(k, t, dirfd, path)
    symlinkat(ctx, k.fs.creds, target, start, path)
    return 0


def sys_symlink(k, t, a):
    return _symlink(k, t, a[0], _AT_FDCWD, a[1])


def sys_symlinkat(k, t, a):
    return _symlink(k, t, a[0], a[1], a[2])


def _link(k, t, olddirfd, oldaddr, newdirfd, newaddr, flags) -> int:
    if flags & ~(abi.AT_SYMLINK_FOLLOW | _AT_EMPTY_PATH):
        raise error(errno.EINVAL)
    old = _path(t, oldaddr)
    new = _path(t, newaddr)
    if not old and flags & _AT_EMPTY_PATH:
        raise error(errno.ENOENT)  # linkat(fd, "") needs CAP_DAC_READ_SEARCH in init's ns
    ctx, ostart, nstart = _at2(k, t, olddirfd, old, newdirfd, new)
    linkat(ctx, k.fs.creds, ostart, old, nstart, new,
           follow=bool(flags & abi.AT_SYMLINK_FOLLOW))
    return 0


def sys_link(k, t, a):
    return _link(k, t, _AT_FDCWD, a[0], _AT_FDCWD, a[1], 0)


def sys_linkat(k, t, a):
    return _link(k, t, a[0], a[1], a[2], a[3], int32(a[4]))


def _unlink(k, t, dirfd, addr, flags) -> int:
    if flags & ~abi.AT_REMOVEDIR:
        raise error(errno.EINVAL)
    path = _path(t, addr)
    ctx, start = _at(k, t, dirfd, path)
    (rmdirat if flags & abi.AT_REMOVEDIR else unlinkat)(ctx, k.fs.creds, start, path)
    return 0


def sys_unlink(k, t, a):
    return _unlink(k, t, _AT_FDCWD, a[0], 0)


def sys_unlinkat(k, t, a):
    return _unlink(k, t, a[0], a[1], int32(a[2]))


def sys_rmdir(k, t, a):
    return _unlink(k, t, _AT_FDCWD, a[0], abi.AT_REMOVEDIR)


def _rename(k, t, olddirfd, oldaddr, newdirfd, newaddr, flags) -> int:
    old = _path(t, oldaddr)
    new = _path(t, newaddr)
    ctx, ostart, nstart = _at2(k, t, olddirfd, old, newdirfd, new)
    renameat2(ctx, k.fs.creds, ostart, old, nstart, new, flags)
    return 0


def sys_rename(k, t, a):
    return _rename(k, t, _AT_FDCWD, a[0], _AT_FDCWD, a[1], 0)


def sys_renameat(k, t, a):
    return _rename(k, t, a[0], a[1], a[2], a[3], 0)


def sys_renameat2(k, t, a):
    return _rename(k, t, a[0], a[1], a[2], a[3], int32(a[4]))


# --- attributes: chmod, chown, utimes, truncate ------------------------------------------

def _own_file(k, t, fd: int):
    """The dentry of descriptor `fd` for a call that changes its file's metadata (mode,
    owner, times, xattrs): only a file the guest opened in its own view, known by the host
    identity of the Sentry's own copy of the description, on which the change is then made
    through the file system (never handed back to the kernel, whose descriptor table
    another thread may change meanwhile). EPERM for any other: a file the front end handed
    (`> out`, the user's terminal), even when the guest also reaches it by a path of its
    view, and anything else not a file of the view (pipes, sockets, memfds, a descriptor
    received over a unix socket), which the Sentry could only change as itself."""
    st, dentry, _ = k.fs.descriptor(t, fd)
    if dentry is None or (st.st_dev, st.st_ino) in k.fs.handed:
        raise error(errno.EPERM)
    return dentry


def _lookup_own(k, t, dirfd, path: bytes, follow: bool):
    """lookup() for a call that changes metadata: /proc/self/fd/N of something that is not
    a file of the view is refused as its descriptor is (EPERM)."""
    ctx, start = _at(k, t, dirfd, path)
    try:
        return lookup(ctx, k.fs.creds, start, path, follow=follow)
    except OutsideVFS:
        raise error(errno.EPERM) from None


def _target(k, t, dirfd, addr, flags):
    """The dentry a path-or-descriptor attribute call acts on."""
    path = _path(t, addr) if addr or not flags & _AT_EMPTY_PATH else b""
    if not path:
        if not flags & _AT_EMPTY_PATH:
            raise error(errno.ENOENT)
        dirfd = int32(dirfd)
        if dirfd == _AT_FDCWD:
            return k.fs.cwd(t)
        return _own_file(k, t, dirfd)
    return _lookup_own(k, t, dirfd, path, follow=not flags & _AT_SYMLINK_NOFOLLOW)


def _chmod(k, t, dirfd, addr, mode, flags) -> int:
    if flags & ~(_AT_SYMLINK_NOFOLLOW | _AT_EMPTY_PATH):
        raise error(errno.EINVAL)
    dentry = _target(k, t, dirfd, addr, flags)
    inode = dentry.inode
    if inode.is_symlink:
        raise error(errno.EOPNOTSUPP)
    dentry.mount.want_write()
    if not owner_or_capable(k.fs.creds, inode):
        raise error(errno.EPERM)
    mode &= 0o7777
    creds = k.fs.creds
    if (mode & stat.S_ISGID and not creds.in_group(inode.gid) and not creds.cap_fsetid):
        mode &= ~stat.S_ISGID
    inode.setattr(mode=mode)
    return 0


def sys_chmod(k, t, a):
    return _chmod(k, t, _AT_FDCWD, a[0], int32(a[1]), 0)


def sys_fchmodat(k, t, a):
    return _chmod(k, t, a[0], a[1], int32(a[2]), 0)


def sys_fchmodat2(k, t, a):
    return _chmod(k, t, a[0], a[1], int32(a[2]), int32(a[3]))


def sys_fchmod(k, t, a):
    return _chmod(k, t, a[0], 0, int32(a[1]), _AT_EMPTY_PATH)


def _chown(k, t, dirfd, addr, uid, gid, flags) -> int:
    if flags & ~(_AT_SYMLINK_NOFOLLOW | _AT_EMPTY_PATH):
        raise error(errno.EINVAL)
    uid, gid = int32(uid), int32(gid)
    dentry = _target(k, t, dirfd, addr, flags)
    inode = dentry.inode
    dentry.mount.want_write()
    creds = k.fs.creds
    new_uid = None if uid == -1 else uid
    new_gid = None if gid == -1 else gid
    # CAP_CHOWN changes anything; an owner may only change the group to one of its own.
    if not creds.cap_chown:
        if new_uid is not None and new_uid != inode.uid:
            raise error(errno.EPERM)
        if new_gid is not None and (inode.uid != creds.uid or not creds.in_group(new_gid)):
            raise error(errno.EPERM)
    if new_uid is None and new_gid is None:
        return 0
    inode.setattr(uid=new_uid, gid=new_gid)
    return 0


def sys_chown(k, t, a):
    return _chown(k, t, _AT_FDCWD, a[0], a[1], a[2], 0)


def sys_lchown(k, t, a):
    return _chown(k, t, _AT_FDCWD, a[0], a[1], a[2], _AT_SYMLINK_NOFOLLOW)


def sys_fchownat(k, t, a):
    return _chown(k, t, a[0], a[1], a[2], a[3], int32(a[4]))


def sys_fchown(k, t, a):
    return _chown(k, t, a[0], 0, a[1], a[2], _AT_EMPTY_PATH)


def _utimens(k, t, dirfd, addr, times, flags) -> int:
    """utimensat(2); `times` is None (both now) or two (sec, nsec) pairs."""
    if flags & ~(_AT_SYMLINK_NOFOLLOW | _AT_EMPTY_PATH):
        raise error(errno.EINVAL)
    if times is not None:
        for sec, nsec in times:
            if nsec not in (_UTIME_NOW, _UTIME_OMIT) and not 0 <= nsec < 1_000_000_000:
                raise error(errno.EINVAL)
        if all(nsec == _UTIME_OMIT for _, nsec in times):
            return 0
    if addr == 0:
        # utimensat(fd, NULL, ...): the descriptor itself (Linux's own extension).
        dirfd = int32(dirfd)
        if dirfd == _AT_FDCWD:
            raise error(errno.EFAULT)
        flags |= _AT_EMPTY_PATH
    dentry = _target(k, t, dirfd, addr, flags)
    inode = dentry.inode
    dentry.mount.want_write()
    creds = k.fs.creds
    set_now = times is None or all(nsec in (_UTIME_NOW, _UTIME_OMIT) for _, nsec in times)
    if not owner_or_capable(creds, inode):
        if not set_now:
            raise error(errno.EPERM)
        permission(creds, inode, MAY_WRITE)
    now = (0, _UTIME_NOW)
    atime, mtime = (now, now) if times is None else times
    inode.setattr(atime=atime, mtime=mtime)
    return 0


_TWO_TIMES = struct.Struct("=qqqq")  # two timespecs, or two timevals: (seconds, ns or µs)
_UTIMBUF = struct.Struct("=qq")


def sys_utimensat(k, t, a):
    times = None
    if a[2]:
        s0, n0, s1, n1 = _TWO_TIMES.unpack(t.mem.read(a[2], _TWO_TIMES.size))
        times = ((s0, n0), (s1, n1))
    return _utimens(k, t, a[0], a[1], times, int32(a[3]))


def _timevals(t, addr):
    if not addr:
        return None
    s0, u0, s1, u1 = _TWO_TIMES.unpack(t.mem.read(addr, _TWO_TIMES.size))
    if not (0 <= u0 < 1_000_000 and 0 <= u1 < 1_000_000):
        raise error(errno.EINVAL)
    return ((s0, u0 * 1000), (s1, u1 * 1000))


def sys_utimes(k, t, a):
    return _utimens(k, t, _AT_FDCWD, a[0], _timevals(t, a[1]), 0)


def sys_futimesat(k, t, a):
    return _utimens(k, t, a[0], a[1], _timevals(t, a[2]), 0)


def sys_utime(k, t, a):
    times = None
    if a[1]:
        actime, modtime = _UTIMBUF.unpack(t.mem.read(a[1], _UTIMBUF.size))
        times = ((actime, 0), (modtime, 0))
    return _utimens(k, t, _AT_FDCWD, a[0], times, 0)


def sys_truncate(k, t, a):
    length = a[1] - (1 << 64) if a[1] >> 63 else a[1]
    if length < 0:
        raise error(errno.EINVAL)
    path = _path(t, a[0])
    ctx, start = _at(k, t, _AT_FDCWD, path)
    dentry = lookup(ctx, k.fs.creds, start, path)
    inode = dentry.inode
    if inode.is_dir:
        raise error(errno.EISDIR)
    if inode.kind is not Kind.REG:
        raise error(errno.EINVAL)
    dentry.mount.want_write()
    permission(k.fs.creds, inode, MAY_WRITE)
    _check_new_size(t, inode, length)
    inode.truncate(length)
    return 0


def _check_new_size(t, inode, length: int) -> None:
    """Linux's inode_newsize_ok: growing a file past the task's RLIMIT_FSIZE is EFBIG, and
    SIGXFSZ to the thread that asked (the kernel applies the limit itself to what runs in the
    task: write, ftruncate, fallocate)."""
    if length <= inode.size:
        return
    soft = resource.prlimit(t.tgid, resource.RLIMIT_FSIZE)[0]
    if soft != resource.RLIM_INFINITY and length > soft:
        syscall("tgkill", t.tgid, t.tid, signal.SIGXFSZ)
        raise error(errno.EFBIG)


# --- where a task is: chdir, fchdir, getcwd, chroot ----------------------------------------

def sys_chdir(k, t, a):
    path = _path(t, a[0])
    ctx, start = _at(k, t, _AT_FDCWD, path)
    chdir(ctx, k.fs.creds, start, path)
    _remember_dir(k.fs, ctx.cwd)
    return CONTINUE


def _remember_dir(fs, dentry) -> None:
    """The kernel is about to move the task to this same directory of its view: knowing
    its host identity makes the next cwd lookup one stat, immune to renames meanwhile."""
    if fs.is_host_file(dentry.inode):
        fs.remember(dentry.inode.host_key, dentry)


def sys_fchdir(k, t, a):
    _, dentry, inode = k.fs.descriptor(t, int32(a[0]))
    if dentry is None:
        return CONTINUE  # the kernel's answer: ENOTDIR for a pipe, a socket ...
    if inode is not None:
        raise error(errno.ENOTDIR)  # its descriptor is not a host directory (see docs)
    if not dentry.inode.is_dir:
        raise error(errno.ENOTDIR)
    permission(k.fs.creds, dentry.inode, MAY_EXEC)
    _remember_dir(k.fs, dentry)
    return CONTINUE


def sys_getcwd(k, t, a):
    cwd = k.fs.cwd(t)
    if cwd.dead:
        raise error(errno.ENOENT)  # the working directory was removed
    path, reachable = d_path(cwd, k.fs.root(t))
    if not reachable:
        path = b"(unreachable)" + path
    data = path + b"\0"
    if len(data) > a[1]:
        raise error(errno.ERANGE)
    t.mem.write(a[0], data)
    return len(data)


def sys_chroot(k, t, a):
    path = _path(t, a[0])
    ctx, start = _at(k, t, _AT_FDCWD, path)
    dentry = lookup(ctx, k.fs.creds, start, path, must_dir=True)
    permission(k.fs.creds, dentry.inode, MAY_EXEC)
    k.fs.chrooted = True
    _remember_dir(k.fs, dentry)
    return CONTINUE


# --- statfs, getdents ---------------------------------------------------------------------

def _pack_statfs(s) -> bytes:
    return abi.STATFS.pack(s.f_type, s.f_bsize, s.f_blocks, s.f_bfree, s.f_bavail, s.f_files,
                        s.f_ffree, s.f_fsid0, s.f_fsid1, s.f_namelen, s.f_frsize, s.f_flags)


def sys_statfs(k, t, a):
    path = _path(t, a[0])
    ctx, start = _at(k, t, _AT_FDCWD, path)
    dentry = lookup(ctx, k.fs.creds, start, path)
    t.mem.write(a[1], _pack_statfs(dentry.inode.statfs()))
    return 0


def sys_fstatfs(k, t, a):
    _, _, inode = k.fs.descriptor(t, int32(a[0]))
    if inode is None:
        return CONTINUE
    t.mem.write(a[1], _pack_statfs(inode.statfs()))
    return 0


_DIRENT64 = abi.DIRENT64


def sys_getdents64(k, t, a):
    """Native for host directories; a synthetic directory is listed from its inode, the
    description's file offset being the index of the next entry (lseek and rewinddir on the
    guest's side keep working)."""
    fd = int32(a[0])
    _, dentry, inode = k.fs.descriptor(t, fd)
    if inode is None:
        return CONTINUE
    if not inode.is_dir:
        raise error(errno.ENOTDIR)
    host = t.getfd(fd)
    try:
        pos = os.lseek(host, 0, os.SEEK_CUR)
        parent = dentry.parent.inode if dentry is not None and dentry.parent else inode
        entries = [(b".", inode), (b"..", parent), *inode.readdir()]
        out = bytearray()
        count = a[2] & 0xFFFFFFFF
        index = pos
        while index < len(entries):
            name, child = entries[index]
            reclen = (_DIRENT64.size + len(name) + 1 + 7) & ~7
            if len(out) + reclen > count:
                break
            out += _DIRENT64.pack(child.ino, index + 1, reclen, child.kind >> 12)  # IFTODT
            out += name + b"\0" * (reclen - _DIRENT64.size - len(name))
            index += 1
        if not out and index < len(entries):
            raise error(errno.EINVAL)  # the buffer cannot hold one entry
        t.mem.write(a[1], bytes(out))
        os.lseek(host, index, os.SEEK_SET)
        return len(out)
    finally:
        os.close(host)


def sys_getdents(k, t, a):
    _, _, inode = k.fs.descriptor(t, int32(a[0]))
    if inode is None:
        return CONTINUE
    raise error(errno.ENOSYS)  # the old format on a synthetic directory: nobody asks


# --- exec ---------------------------------------------------------------------------------

def _check_exec(k, t, dirfd, addr, flags) -> None:
    if flags & ~(_AT_EMPTY_PATH | _AT_SYMLINK_NOFOLLOW):
        raise error(errno.EINVAL)
    path = _path(t, addr)
    if not path:
        if flags & _AT_EMPTY_PATH:
            return  # the descriptor's own file: the kernel checks it, as it was opened
        raise error(errno.ENOENT)
    ctx, start = _at(k, t, dirfd, path)
    dentry = lookup(ctx, k.fs.creds, start, path, follow=not flags & _AT_SYMLINK_NOFOLLOW)
    inode = dentry.inode
    if inode.is_symlink:
        raise error(errno.ELOOP)
    if inode.kind is not Kind.REG:
        raise error(errno.EACCES)
    if dentry.mount.noexec:
        raise error(errno.EACCES)
    permission(k.fs.creds, inode, MAY_EXEC)


def sys_execve(k, t, a):
    _check_exec(k, t, _AT_FDCWD, a[0], 0)
    k.fs.forget_creds()  # a root task's capabilities are computed afresh
    return CONTINUE


def sys_execveat(k, t, a):
    _check_exec(k, t, a[0], a[1], int32(a[4]))
    k.fs.forget_creds()
    return CONTINUE


# --- xattrs ---------------------------------------------------------------------------------

_XATTR_NAME_MAX = 255
_XATTR_SIZE_MAX = 65536


def _xattr_name(t, addr) -> bytes:
    name = t.mem.read_cstring(addr, _XATTR_NAME_MAX + 1)
    if not name:
        raise error(errno.ERANGE)
    return name


def _xattr_dentry(k, t, addr, follow):
    path = _path(t, addr)
    ctx, start = _at(k, t, _AT_FDCWD, path)
    return lookup(ctx, k.fs.creds, start, path, follow=follow)


def _sized_out(t, addr: int, size: int, data: bytes) -> int:
    """The xattr calls' answer: with size 0 only the length; ERANGE if it does not fit."""
    size &= 0xFFFFFFFF
    if size:
        if len(data) > size:
            raise error(errno.ERANGE)
        t.mem.write(addr, data)
    return len(data)


def _may_change_xattr(k, dentry, name: bytes) -> None:
    dentry.mount.want_write()
    if not owner_or_capable(k.fs.creds, dentry.inode) and not name.startswith(b"user."):
        raise error(errno.EPERM)


def _getxattr(k, t, a, follow):
    dentry = _xattr_dentry(k, t, a[0], follow)
    return _sized_out(t, a[2], a[3], dentry.inode.getxattr(_xattr_name(t, a[1])))


def sys_getxattr(k, t, a):
    return _getxattr(k, t, a, True)


def sys_lgetxattr(k, t, a):
    return _getxattr(k, t, a, False)


def _setxattr(k, t, a, target):
    """setxattr and its l and f forms; `target()` is the dentry, found after the arguments
    are read and checked, in Linux's order."""
    flags = int32(a[4])
    if flags & ~3:
        raise error(errno.EINVAL)
    size = a[3] & 0xFFFFFFFF
    if size > _XATTR_SIZE_MAX:
        raise error(errno.E2BIG)
    name = _xattr_name(t, a[1])
    value = t.mem.read(a[2], size) if size else b""
    dentry = target()
    _may_change_xattr(k, dentry, name)
    dentry.inode.setxattr(name, value, flags)
    return 0


def sys_setxattr(k, t, a):
    return _setxattr(k, t, a, lambda: _lookup_own(k, t, _AT_FDCWD, _path(t, a[0]), True))


def sys_lsetxattr(k, t, a):
    return _setxattr(k, t, a, lambda: _lookup_own(k, t, _AT_FDCWD, _path(t, a[0]), False))


def sys_fsetxattr(k, t, a):
    return _setxattr(k, t, a, lambda: _own_file(k, t, int32(a[0])))


def _listxattr(k, t, a, follow):
    dentry = _xattr_dentry(k, t, a[0], follow)
    return _sized_out(t, a[1], a[2], b"".join(n + b"\0" for n in dentry.inode.listxattr()))


def sys_listxattr(k, t, a):
    return _listxattr(k, t, a, True)


def sys_llistxattr(k, t, a):
    return _listxattr(k, t, a, False)


def _removexattr(k, t, a, target):
    name = _xattr_name(t, a[1])
    dentry = target()
    _may_change_xattr(k, dentry, name)
    dentry.inode.removexattr(name)
    return 0


def sys_removexattr(k, t, a):
    return _removexattr(k, t, a, lambda: _lookup_own(k, t, _AT_FDCWD, _path(t, a[0]), True))


def sys_lremovexattr(k, t, a):
    return _removexattr(k, t, a, lambda: _lookup_own(k, t, _AT_FDCWD, _path(t, a[0]), False))


def sys_fremovexattr(k, t, a):
    return _removexattr(k, t, a, lambda: _own_file(k, t, int32(a[0])))


_IN_ONLYDIR = 0x01000000
_IN_DONT_FOLLOW = 0x02000000


def sys_inotify_add_watch(k, t, a):
    """Decided here, then run by the kernel on the same object in the guest's host view,
    so that events arrive natively."""
    mask = a[2] & 0xFFFFFFFF
    path = _path(t, a[1])
    ctx, start = _at(k, t, _AT_FDCWD, path)
    dentry = lookup(ctx, k.fs.creds, start, path, follow=not mask & _IN_DONT_FOLLOW,
                    must_dir=bool(mask & _IN_ONLYDIR))
    permission(k.fs.creds, dentry.inode, MAY_READ)
    return CONTINUE
