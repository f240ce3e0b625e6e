"""The gofer's operations on host files, each confined beneath its mount's root. Every security
decision of the gofer is in this module:

- Every walk is `openat2(root, path, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: `..` stops at
  the root, absolute symlinks restart at it, /proc-style magic links fail with ELOOP, and the
  kernel answers EAGAIN (retried here) when a concurrent rename could have let `..` out.
- An operation that acts on what a path names (open, stat, chmod, listdir …) resolves the whole
  path that way and then acts on the resulting descriptor (AT_EMPTY_PATH, fstat, f*xattr), so
  the kernel never follows anything outside that walk.
- An operation that names an entry (mkdir, unlink, rename, link, symlink …) walks to the parent
  that way and hands the final component, which must be a plain name, to the *at call, which
  does not follow it. `link` never follows its source, so it cannot pull in a file from outside.
- Shared mounts (a volume, /dev, the guest's own root, which holds the volumes: any whose
  files host users reach): no set-user-ID or set-group-ID bit on anything but a directory.
  chmod asking for one is refused (EPERM); a file is created without them. Inside, every
  mount is nosuid, but on the host such a file is a setuid program any host user runs as
  its owner. (A directory's S_ISGID only passes its group on; it grants nothing.) chown is
  the kernel's, which clears both bits and security.capability itself. The private mounts
  (the overlay's upper layer, /tmp, /dev/shm) live in the Sentry's own tmpfs, which no host
  user reaches and the kernel would not honour set-id bits from.
- Read-only mounts: every write is refused here with EROFS before any host call. Where the
  gofer may (CAP_SYS_ADMIN), each root is also a detached clone of the host tree, made
  read-only for read-only mounts, so the kernel refuses writes through donated descriptors
  (fchmod, fsetxattr …) as well, and `..` cannot climb out of it even without RESOLVE flags.

Permission checks against the guest's credentials are the Sentry's: the gofer acts with its own.
"""

import ctypes
import errno
import fcntl
import os
import stat
from contextlib import contextmanager
from dataclasses import dataclass

from .. import abi
from . import hostcalls
from .protocol import MAX_MESSAGE, DirEntry, pack_dirents

RESOLVE = abi.RESOLVE_IN_ROOT | abi.RESOLVE_NO_MAGICLINKS
_EAGAIN_RETRIES = 16
# Room for a listing or an xattr value plus its reply header in one message.
_LISTDIR_BUFFER = 32 * 1024
_XATTR_MAX = MAX_MESSAGE - 1024
_MAX_DIRENT = (abi.DIRENT64.size + abi.NAME_MAX + 1 + 7) & ~7  # one record with a NAME_MAX name


@dataclass(frozen=True)
class Root:
    fd: int
    read_only: bool
    detached: bool  # a private clone of the host tree (read-only in the kernel if read_only)
    host_shared: bool = True  # host users reach its files: no set-id bits (above)
    devices: frozenset[int] = frozenset()  # the st_dev of the file systems its files are on


def open_root(host_path: str, read_only: bool, host_shared: bool = True,
              entry: str | None = None) -> Root:
    """`entry`: the root holds only this one file, bound there (a single-file volume), whose
    file system is the mount's as much as the root's own."""
    fd = os.open(host_path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    devices = frozenset({os.fstat(fd).st_dev, *(
        (os.stat(entry, dir_fd=fd, follow_symlinks=False).st_dev,) if entry else ())})
    try:
        tree = _detached_clone(fd, read_only)
    except OSError as e:
        if e.errno in (errno.EPERM, errno.ENOSYS, errno.EINVAL):
            # No CAP_SYS_ADMIN over this mount (an unprivileged gofer), or a kernel or file
            # system that cannot clone it: the checks in this module remain, and suffice.
            return Root(fd, read_only, detached=False, host_shared=host_shared,
                        devices=devices)
        os.close(fd)
        raise
    os.close(fd)
    return Root(tree, read_only, detached=True, host_shared=host_shared, devices=devices)


def _detached_clone(fd: int, read_only: bool) -> int:
    """An O_PATH descriptor of a private copy of the mount tree at fd (submounts included),
    attached nowhere: `..` at its root stays there, and host mount changes do not reach it."""
    tree = hostcalls.open_tree(fd, b"", abi.OPEN_TREE_CLONE | abi.OPEN_TREE_CLOEXEC
                               | abi.AT_RECURSIVE | abi.AT_EMPTY_PATH)
    if read_only:
        try:
            hostcalls.mount_setattr(tree, b"", abi.AT_EMPTY_PATH | abi.AT_RECURSIVE, abi.MOUNT_ATTR_RDONLY)
        except BaseException:
            os.close(tree)
            raise
    return tree


_SET_ID = stat.S_ISUID | stat.S_ISGID


def _creation_mode(root: Root, mode: int) -> int:
    """The mode a new non-directory gets: without set-id bits on a shared mount. Stripped,
    not refused, as Linux strips S_ISGID at creation where it is not the creator's to give:
    refusing would fail the whole creation (cp -p, tar) for a bit that cannot be had."""
    return mode & ~_SET_ID if root.host_shared else mode


def _error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def _root(roots: list[Root], mount: int) -> Root:
    if not 0 <= mount < len(roots):
        raise _error(errno.EINVAL)
    return roots[mount]


def _writable(roots: list[Root], mount: int) -> Root:
    root = _root(roots, mount)
    if root.read_only:
        raise _error(errno.EROFS)
    return root


def walk(root: Root, path: bytes, flags: int, mode: int = 0) -> int:
    """The descriptor openat2 gives for `path` beneath `root`; the caller owns it."""
    if not path:
        raise _error(errno.ENOENT)  # as open(""); the root itself is "." or "/"
    for _ in range(_EAGAIN_RETRIES):
        try:
            return hostcalls.openat2(root.fd, path, flags | os.O_CLOEXEC, mode, RESOLVE)
        except OSError as e:
            if e.errno != errno.EAGAIN:
                raise
    raise _error(errno.EAGAIN)


@contextmanager
def _opened(root: Root, path: bytes, flags: int):
    fd = walk(root, path, flags)
    try:
        yield fd
    finally:
        os.close(fd)


def _path_flags(follow: int) -> int:
    return os.O_PATH if follow else os.O_PATH | os.O_NOFOLLOW


@contextmanager
def _entry(root: Root, path: bytes, *, creating: bool, directory_ok: bool):
    """(parent descriptor, final name) for an operation that names an entry.

    The final component must be a plain name: for the root, `.` or `..` the answer is EEXIST
    when creating and EBUSY otherwise, as Linux gives for mkdir("/") and rmdir("/"). A trailing
    slash is accepted only by the directory operations (mkdir, rmdir, rename); the others get
    ENOTDIR. The Sentry normalises paths first, so these are the answers to its bugs."""
    if not path:
        raise _error(errno.ENOENT)
    stripped = path.rstrip(b"/")
    parent, _, name = stripped.rpartition(b"/")
    if name in (b"", b".", b".."):
        raise _error(errno.EEXIST if creating else errno.EBUSY)
    if stripped != path and not directory_ok:
        raise _error(errno.ENOTDIR)
    with _opened(root, parent or b".", os.O_PATH | os.O_DIRECTORY) as fd:
        yield fd, name


# Operations, named as in protocol.OPS. Each returns the values of its reply (open: the fd).

def op_open(roots, mount, path, flags, mode):
    root = _root(roots, mount)
    if not 0 <= flags < 1 << 32:
        raise _error(errno.EINVAL)
    if flags & os.O_PATH:
        return walk(root, path, flags)  # openat2 itself rejects O_PATH with other flags
    creating = flags & (os.O_CREAT | abi.O_TMPFILE_BIT)
    mode = _creation_mode(root, mode & 0o7777) if creating else 0  # openat2 wants 0 otherwise
    writes = (flags & os.O_ACCMODE) != os.O_RDONLY or flags & (os.O_TRUNC | abi.O_TMPFILE_BIT)
    creates, exclusive = flags & os.O_CREAT, flags & os.O_EXCL
    if root.read_only and writes:
        raise _error(errno.EROFS)
    if root.read_only and creates:
        # As Linux: O_CREAT on a read-only mount opens an existing file and fails only when
        # it would have to create one.
        flags &= ~(os.O_CREAT | os.O_EXCL)
        mode = 0
    # No open may block the gofer (a FIFO with no peer would stall every other request):
    # open with O_NONBLOCK and clear it afterwards unless it was asked for. O_NOCTTY: the gofer
    # never acquires a terminal.
    try:
        fd = walk(root, path, flags | os.O_NONBLOCK | os.O_NOCTTY, mode)
    except OSError as e:
        if root.read_only and creates and e.errno == errno.ENOENT:
            raise _error(errno.EROFS) from None
        raise
    try:
        if root.read_only and creates and exclusive:
            raise _error(errno.EEXIST)
        if not flags & os.O_NONBLOCK:  # fcntl, not os.set_blocking's ioctl(FIONBIO)
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        if root.host_shared and writes:
            _drop_set_id_for_writing(roots, fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _drop_set_id_for_writing(roots: list[Root], fd: int) -> None:
    """A set-id file on a shared mount loses its set-id bits when opened for writing. The
    kernel clears them at the first write only for a writer without CAP_FSETID, which a root
    guest keeps (Docker's set): without this, a guest could rewrite a host setuid binary that
    sits on a volume and keep it setuid. Decided and changed on the opened descriptor itself."""
    st = os.stat(fd)
    if not (stat.S_ISREG(st.st_mode) and st.st_mode & _SET_ID):
        return
    # Descriptors are opened through the guest's own root (the last, shared because it holds
    # the volumes), which also reaches the private mounts' files: those keep Linux's
    # behaviour. A file is a shared mount's when it is on that mount's file system and on no
    # private one's (/dev shares the scratch tmpfs with /tmp, and holds no regular files).
    shared = {dev for r in roots[:-1] if r.host_shared for dev in r.devices}
    private = {dev for r in roots[:-1] if not r.host_shared for dev in r.devices}
    if st.st_dev not in shared or st.st_dev in private:
        return
    hostcalls.fchmodat2(fd, b"", st.st_mode & 0o7777 & ~_SET_ID, abi.AT_EMPTY_PATH)


def op_stat(roots, mount, path, follow):
    with _opened(_root(roots, mount), path, _path_flags(follow)) as fd:
        st = os.stat(fd)
    return (st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, st.st_rdev,
            st.st_size, st.st_blksize, st.st_blocks, st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns)


def op_mkdir(roots, mount, path, mode):
    with _entry(_writable(roots, mount), path, creating=True, directory_ok=True) as (fd, name):
        os.mkdir(name, mode & 0o7777, dir_fd=fd)
    return ()


def op_mknod(roots, mount, path, mode):
    # FIFOs and sockets are what the gofer exists to make; a regular file (type 0 or S_IFREG)
    # is allowed as mknod(2) allows it, being no more than open(O_CREAT | O_EXCL). Devices are
    # refused as for an unprivileged user.
    kind = stat.S_IFMT(mode)
    if kind in (stat.S_IFCHR, stat.S_IFBLK):
        raise _error(errno.EPERM)
    if kind not in (0, stat.S_IFREG, stat.S_IFIFO, stat.S_IFSOCK):
        raise _error(errno.EINVAL)
    root = _writable(roots, mount)
    with _entry(root, path, creating=True, directory_ok=False) as (fd, name):
        os.mknod(name, kind | _creation_mode(root, mode & 0o7777), 0, dir_fd=fd)
    return ()


def op_unlink(roots, mount, path):
    with _entry(_writable(roots, mount), path, creating=False, directory_ok=False) as (fd, name):
        os.unlink(name, dir_fd=fd)
    return ()


def op_rmdir(roots, mount, path):
    with _entry(_writable(roots, mount), path, creating=False, directory_ok=True) as (fd, name):
        os.rmdir(name, dir_fd=fd)
    return ()


def _same_mount(roots, mount, mount2) -> Root:
    root, _ = _root(roots, mount), _root(roots, mount2)
    if mount != mount2:
        raise _error(errno.EXDEV)
    if root.read_only:
        raise _error(errno.EROFS)
    return root


def op_rename(roots, mount, old, mount2, new, flags):
    root = _same_mount(roots, mount, mount2)
    if flags & ~(abi.RENAME_NOREPLACE | abi.RENAME_EXCHANGE):
        raise _error(errno.EINVAL)  # RENAME_WHITEOUT is for overlay file systems, not guests
    with _entry(root, old, creating=False, directory_ok=True) as (ofd, oname), \
            _entry(root, new, creating=False, directory_ok=True) as (nfd, nname):
        hostcalls.renameat2(ofd, oname, nfd, nname, flags)
    return ()


def op_link(roots, mount, old, mount2, new):
    root = _same_mount(roots, mount, mount2)
    with _entry(root, old, creating=False, directory_ok=False) as (ofd, oname), \
            _entry(root, new, creating=True, directory_ok=False) as (nfd, nname):
        # follow_symlinks=False: linkat without AT_SYMLINK_FOLLOW links a symlink itself,
        # never what it points to.
        os.link(oname, nname, src_dir_fd=ofd, dst_dir_fd=nfd, follow_symlinks=False)
    return ()


def op_symlink(roots, mount, target, path):
    # The target is data, stored verbatim and never resolved here; when followed later it is
    # resolved by a walk, inside the root.
    root = _writable(roots, mount)
    if not target:
        raise _error(errno.ENOENT)
    with _entry(root, path, creating=True, directory_ok=False) as (fd, name):
        os.symlink(target, name, dir_fd=fd)
    return ()


def op_readlink(roots, mount, path):
    with _opened(_root(roots, mount), path, os.O_PATH | os.O_NOFOLLOW) as fd:
        if not stat.S_ISLNK(os.stat(fd).st_mode):
            raise _error(errno.EINVAL)
        return (os.readlink(b"", dir_fd=fd),)


def op_listdir(roots, mount, path, cookie):
    """One page of entries from `cookie` (0: the start) as the host's getdents64 gives them,
    without `.` and `..` (the Sentry knows its own tree's). Returns (next cookie, eof, entries)."""
    buf = ctypes.create_string_buffer(_LISTDIR_BUFFER)
    used, eof = 0, False
    with _opened(_root(roots, mount), path, os.O_RDONLY | os.O_DIRECTORY) as fd:
        os.lseek(fd, cookie, os.SEEK_SET)
        while len(buf) - used >= _MAX_DIRENT:
            n = hostcalls.getdents64(fd, buf, used)
            if n == 0:
                eof = True
                break
            used += n
    raw, pos, entries, next_cookie = buf.raw[:used], 0, [], cookie
    while pos < used:
        ino, off, reclen, kind = abi.DIRENT64.unpack_from(raw, pos)
        name = raw[pos + abi.DIRENT64.size:pos + reclen].split(b"\0", 1)[0]
        pos += reclen
        next_cookie = off
        if name not in (b".", b".."):
            entries.append(DirEntry(name, ino, kind, off))
    return next_cookie, int(eof), pack_dirents(entries)


def op_chmod(roots, mount, path, mode):
    root = _writable(roots, mount)
    with _opened(root, path, os.O_PATH) as fd:
        # Decided on the descriptor that is then changed: a rename cannot swap the file.
        if root.host_shared and mode & _SET_ID and not stat.S_ISDIR(os.stat(fd).st_mode):
            raise _error(errno.EPERM)
        hostcalls.fchmodat2(fd, b"", mode & 0o7777, abi.AT_EMPTY_PATH)
    return ()


def op_chown(roots, mount, path, uid, gid, follow):
    root = _writable(roots, mount)
    if not (-1 <= uid < 0xFFFFFFFF and -1 <= gid < 0xFFFFFFFF):
        raise _error(errno.EINVAL)
    with _opened(root, path, _path_flags(follow)) as fd:
        hostcalls.fchownat(fd, b"", uid, gid, abi.AT_EMPTY_PATH)
    return ()


def op_utimens(roots, mount, path, atime_s, atime_ns, mtime_s, mtime_ns, follow):
    root = _writable(roots, mount)
    with _opened(root, path, _path_flags(follow)) as fd:
        hostcalls.utimensat(fd, b"", (atime_s, atime_ns), (mtime_s, mtime_ns), abi.AT_EMPTY_PATH)
    return ()


def _regular_or_directory(root: Root, path: bytes, flags: int, follow: int) -> int | None:
    """A descriptor opened with `flags` if `path` is a regular file or directory, else None.

    Looked at through O_PATH first, so that a device node the host placed in a mount is never
    opened (opening one can have effects); the second open is checked to be the same file."""
    with _opened(root, path, _path_flags(follow)) as probe:
        before = os.stat(probe)
    if not (stat.S_ISREG(before.st_mode) or stat.S_ISDIR(before.st_mode)):
        return None
    fd = walk(root, path, flags | os.O_NONBLOCK | os.O_NOCTTY | (0 if follow else os.O_NOFOLLOW))
    after = os.stat(fd)
    if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)
        raise _error(errno.EAGAIN)  # replaced on the host between the two opens
    return fd


def op_truncate(roots, mount, path, length):
    # A directory gets EISDIR from the O_WRONLY open itself.
    fd = _regular_or_directory(_writable(roots, mount), path, os.O_WRONLY, follow=True)
    if fd is None:
        raise _error(errno.EINVAL)  # as truncate(2) on anything but a regular file
    try:
        os.ftruncate(fd, length)
    finally:
        os.close(fd)
    return ()


def op_statfs(roots, mount, path):
    root = _root(roots, mount)
    with _opened(root, path, os.O_PATH) as fd:
        f = list(hostcalls.fstatfs(fd))
    if root.read_only:
        f[-1] |= os.ST_RDONLY
    return tuple(f)


# Extended attributes. Only the user.* namespace reaches the host. The others answer as Linux
# does for an unprivileged process: trusted.* and security.* cannot be written (EPERM) and read
# as absent (ENODATA), so no host label or file capability is shown or set; system.* (POSIX
# ACLs, which would change permissions behind the Sentry's back) and unknown namespaces are
# not supported (EOPNOTSUPP), as on a file system without them. listxattr lists user.* alone.
# user.* attributes exist only on regular files and directories (Linux's own rule), which are
# the only files opened here.

def _xattr_allowed(name: bytes, writing: bool) -> None:
    if name.startswith(b"user."):
        if len(name) > 255 or name == b"user.":
            raise _error(errno.ERANGE if name != b"user." else errno.EINVAL)
        return
    if name.startswith((b"trusted.", b"security.")):
        raise _error(errno.EPERM if writing else errno.ENODATA)
    raise _error(errno.EOPNOTSUPP)


@contextmanager
def _xattr_file(root: Root, path: bytes, follow: int, absent: int):
    fd = _regular_or_directory(root, path, os.O_RDONLY, follow)
    if fd is None:
        raise _error(absent)
    try:
        yield fd
    finally:
        os.close(fd)


def op_getxattr(roots, mount, path, name, follow):
    _xattr_allowed(name, writing=False)
    with _xattr_file(_root(roots, mount), path, follow, errno.ENODATA) as fd:
        value = os.getxattr(fd, name)
    # A value that does not fit one message: E2BIG, what Linux says for one over its own limit.
    if len(value) > _XATTR_MAX:
        raise _error(errno.E2BIG)
    return (value,)


def op_setxattr(roots, mount, path, name, value, flags, follow):
    root = _writable(roots, mount)
    _xattr_allowed(name, writing=True)
    if flags & ~(os.XATTR_CREATE | os.XATTR_REPLACE):
        raise _error(errno.EINVAL)
    if len(value) > _XATTR_MAX:
        raise _error(errno.E2BIG)
    with _xattr_file(root, path, follow, errno.EPERM) as fd:
        os.setxattr(fd, name, value, flags)
    return ()


def op_listxattr(roots, mount, path, follow):
    fd = _regular_or_directory(_root(roots, mount), path, os.O_RDONLY, follow)
    names = []  # a symlink, FIFO or device has no user.* names
    if fd is not None:
        try:
            names = os.listxattr(fd)
        finally:
            os.close(fd)
    out = b"".join(os.fsencode(n) + b"\0" for n in names if n.startswith("user."))
    if len(out) > _XATTR_MAX:
        raise _error(errno.E2BIG)
    return (out,)


def op_removexattr(roots, mount, path, name, follow):
    root = _writable(roots, mount)
    _xattr_allowed(name, writing=True)
    with _xattr_file(root, path, follow, errno.EPERM) as fd:
        os.removexattr(fd, name)
    return ()


OPERATIONS = {name[3:]: fn for name, fn in globals().items() if name.startswith("op_")}
