"""proc: /proc generated from the Sentry's state, after Linux's fs/proc.

The Sentry mounts `ProcFS(view, dev=...).root` at /proc. Everything shown comes from `view`
(a `ProcView`, which the Sentry implements), asked again at every lookup, listing and open,
so that entries appear and disappear with the tasks and `self` points at whoever asks.

    /proc/self -> <tgid>          /proc/thread-self -> <tgid>/task/<tid>
    /proc/mounts -> self/mounts   /proc/net -> self/net
    /proc/{cpuinfo,meminfo,uptime,loadavg,filesystems}
    /proc/sys/{kernel,fs,vm}/...: the names of kernel/sysctl.py
    /proc/sysvipc/{msg,sem,shm}: the guest's ipc namespace's (platform/sysvipc.py)
    /proc/<pid>/{stat,status,cmdline,environ,comm,maps,limits,mounts,mountinfo}
    /proc/<pid>/{fd,fdinfo}/<n>, /proc/<pid>/{cwd,root,exe}, /proc/<pid>/task/<tid>/...
    /proc/<pid>/ns/<namespace>, /proc/<pid>/net/{tcp,udp,unix,dev,...}
    /proc/<pid>/{attr,map_files}/..., and every other name of Linux's task directories

Guests read through real host descriptors: `open_host` generates a file's content into a
sealed memfd (no writes, no size change, not executable), and gives a directory an empty
one (the Sentry lists it from `readdir`). `ProcFS.by_host_key` maps such a descriptor's
(st_dev, st_ino) back to its inode.

fd/<n>, cwd, root, exe and ns/<namespace> are magic links (`magic` is True): `readlink` shows where they
point, and `jump` returns the dentry that following one lands on, as Linux's nd_jump_link,
which the VFS walk calls instead of reading a path. Both need the asking task to be allowed
to ptrace-read the process (EACCES otherwise), as do environ, maps, fd/ and fdinfo/.

Where Linux's procfs is observable, this one answers the same (checked against the host's
/proc, as root and as an ordinary user):

- A name that is not there is ENOENT from `lookup` itself (Linux's proc lookups fail rather
  than return a negative dentry), so mkdir, creat, symlink, link and rename to a new name in
  /proc all fail ENOENT, for anyone, before any permission check.
- Removing or renaming an existing entry is EPERM (the VFS's permission check may answer
  EACCES first, as Linux does at the top level; in a process's directories, which are
  `immutable`, Linux answers EPERM even then).
- Attributes, as proc_notify_change, proc_sys_setattr and proc_setattr allow: top-level
  entries keep any chmod, chown and utimes; /proc/sys refuses mode and owner; under a
  process, its directory and task/<tid> refuse everything, other entries refuse mode and
  accept the rest without keeping the owner (it is always the process's).
- Sizes are 0 (64 for fd links), inode numbers are stable per (pid, entry) while the task
  lives, directory link counts are 2 plus the subdirectories.

Deliberately different: opening a file for writing is EACCES (EROFS under /proc/sys, as in a
container whose /proc/sys is read-only), where Linux lets root open and then fails the write;
truncate is accepted and changes nothing, as in Linux.
"""

import collections
import errno
import fcntl
import os
import time
import weakref
from _blake2 import blake2b  # hashlib's own, without importing OpenSSL
from collections.abc import Callable
from typing import Protocol

from ... import abi
from ...gofer.protocol import StatfsResult
from ..vfs.dentry import Dentry
from ..vfs.errors import error
from ..vfs.inode import Inode, Kind, read_through_host
from ..vfs.pathname import d_path
from ..kernel import sysctl

PROC_SUPER_MAGIC = 0x9FA0
SYSFS_MAGIC = 0x62656572
# The host keys of handed-out descriptors that by_host_key remembers, most recent first: a
# descriptor older than the last HOST_KEYS_KEPT proc opens is no longer recognised.
HOST_KEYS_KEPT = 1 << 14
# What /proc/filesystems lists: the file systems a guest may mount.
FILESYSTEMS = (b"devpts", b"overlay", b"proc", b"sysfs", b"tmpfs")

_MFD_NOEXEC_SEAL = 0x0008  # Linux 6.3+: mode 0666 and F_SEAL_EXEC
_SEALS = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL
_PAGE_SIZE = 4096
_NSEC = 1_000_000_000
_FD_LINK_SIZE = 64  # what Linux's stat shows for /proc/<pid>/fd/<n>
# The attributes each kind of entry refuses to change (EPERM), as Linux's proc_setattr,
# proc_sys_setattr and pid directories do; other top-level entries change freely
# (proc_notify_change).
_PROC_SETATTR = frozenset({"mode"})
_SYSCTL_SETATTR = frozenset({"mode", "uid", "gid"})
_ALL_SETATTR = frozenset({"mode", "uid", "gid", "atime", "mtime"})
_FD_LINK_MODES = {abi.O_RDONLY: 0o500, abi.O_WRONLY: 0o300, abi.O_RDWR: 0o700}


class ProcView(Protocol):
    """What /proc shows, as the Sentry knows it. Task ids are the asking task's pid
    namespace's. A method given a task that is gone raises OSError (ESRCH or ENOENT), which
    reaches the guest as it is.

    `owner` is who owns a process's entries (Linux's task_dump_owner: its effective ids, or
    root when it is not dumpable); `may_ptrace` says whether the asking task may
    PTRACE_MODE_READ the process (always true of itself)."""

    def sysctl(self, name: str) -> bytes: ...  # /proc/sys/<name>, one of sysctl.names()
    def sysvipc(self, name: str) -> bytes: ...  # /proc/sysvipc/<name>: msg, sem or shm
    def current_tgid(self) -> int | None: ...
    def current_tid(self) -> int | None: ...
    def tgids(self) -> list[int]: ...  # live thread groups, ascending
    def tids(self, tgid: int) -> list[int]: ...  # its threads, ascending
    def tgid_of(self, tid: int) -> int | None: ...  # None: no such task
    def owner(self, tid: int) -> tuple[int, int]: ...  # (uid, gid)
    def may_ptrace(self, tgid: int) -> bool: ...

    def host_open(self, tid: int, name: str) -> int:
        """A read-only descriptor of the kernel's /proc/TID/NAME in the guest's namespace."""

    def host_read(self, tid: int, name: str) -> bytes:
        """The host's /proc/<tid>/<name> for the task files the kernel generates (stat,
        status, maps, attr/current ...; thread-level: the thread's own, as
        /proc/<tgid>/task/<tid>/<name>)."""

    def net_table(self, tid: int, name: str) -> bytes:
        """/proc/<tid>/net/<name>: the kernel's table for the guest's network namespace, or,
        under the OCI runtime, the container's, where the Sentry makes the IP sockets."""

    def fds(self, tgid: int) -> list[int]: ...  # open descriptors, ascending

    def fd_file(self, tgid: int, fd: int) -> Dentry | bytes | None:
        """What descriptor `fd` is: the Dentry of a file in the Sentry's VFS, the name of
        anything else as Linux shows it (b"pipe:[123]", b"socket:[456]",
        b"anon_inode:[eventfd]"), or None when it is not open."""

    def reopen_fd(self, tgid: int, fd: int, flags: int) -> int:
        """A new host open (with `flags`) of descriptor `fd` of `tgid`, for one that is not a
        file of the VFS."""

    def fdinfo(self, tgid: int, fd: int) -> bytes:
        """/proc/<pid>/fdinfo/<fd>; its "flags:" line also gives fd/<fd> its mode."""

    def cwd(self, tgid: int) -> Dentry: ...
    def root(self, tgid: int) -> Dentry: ...
    def exe(self, tgid: int) -> Dentry | None: ...
    def namespace(self, tgid: int, name: bytes) -> bytes: ...  # b"net:[4026531840]"
    def mounts(self, tgid: int) -> bytes: ...  # as seen from its root (see mounts_line)
    def mountinfo(self, tgid: int) -> bytes: ...  # (see mountinfo_line)
    def cgroup(self, tgid: int) -> bytes: ...  # /proc/<pid>/cgroup, in the guest's terms
    def uptime(self) -> bytes: ...
    def loadavg(self) -> bytes: ...
    def meminfo(self) -> bytes: ...
    def cpuinfo(self) -> bytes: ...
    def stat(self) -> bytes: ...  # /proc/stat
    def version(self) -> bytes: ...  # /proc/version


class ProcFS:
    """One proc instance (a superblock). `root` is what the Sentry mounts."""

    magic = PROC_SUPER_MAGIC

    def __init__(self, view: ProcView | None, *, dev: int,
                 clock: Callable[[], int] = time.time_ns):
        self.view = view
        self.dev = dev
        self.clock = clock
        self._next_ino = 1
        # The inodes under /proc/<pid>, by thread group and path below /proc: one object
        # while anything (a dentry) holds it, so that the dentry cache keeps recognising it,
        # then made again with the same inode number.
        self._tasks: weakref.WeakValueDictionary[tuple, _Node] = weakref.WeakValueDictionary()
        self._host_keys: collections.OrderedDict[tuple[int, int], _Node] = (
            collections.OrderedDict())
        self.root = self._make_root()

    def _make_root(self) -> "_Node":
        return _Root(self)

    def by_host_key(self, st_dev: int, st_ino: int) -> Inode | None:
        """The inode whose `open_host` made the host file (st_dev, st_ino), or None (not
        ours, or older than the last HOST_KEYS_KEPT opens)."""
        key = (st_dev, st_ino)
        inode = self._host_keys.get(key)
        if inode is not None:
            self._host_keys.move_to_end(key)
        return inode

    def _handed_out(self, key: tuple[int, int], inode: "_Node") -> None:
        self._host_keys.pop(key, None)
        self._host_keys[key] = inode
        if len(self._host_keys) > HOST_KEYS_KEPT:
            self._host_keys.popitem(last=False)

    def _fixed_ino(self) -> int:
        ino, self._next_ino = self._next_ino, self._next_ino + 1
        return ino

    def _task_node(self, path: tuple, task: tuple[int, int],
                   make: Callable[..., "_Node"]) -> "_Node":
        """The entry at `path` below /proc ((pid, b"task", tid, b"fd", 3) ...) of `task`
        (tid, tgid), made by `make(task=, path=)` unless it exists."""
        key = (task[1], path)
        node = self._tasks.get(key)
        if node is None:
            node = self._tasks[key] = make(task=task, path=path)
        return node


def _path_ino(tgid: int, path: tuple) -> int:
    """A task entry's inode number, from its thread group and path below /proc alone:
    stable without a table (two collide as rarely as two 63-bit random draws), and far
    above the fixed entries' numbers, which count from 1."""
    digest = blake2b(repr((tgid, path)).encode(), digest_size=8).digest()
    return (1 << 32) + int.from_bytes(digest, "little") % ((1 << 63) - (1 << 32))


def _number(name: bytes) -> int | None:
    """A pid, tid or fd as a name: decimal, without sign or leading zeros (Linux's
    name_to_int), else None."""
    if not name.isdigit() or (name[:1] == b"0" and len(name) > 1) or len(name) > 10:
        return None
    return int(name)


def mangle(field: bytes) -> bytes:
    """A /proc/<pid>/mounts or mountinfo field with space, tab, newline and backslash
    written as octal escapes (Linux's mangle)."""
    out = bytearray()
    for c in field:
        out += b"\\%03o" % c if c in b" \t\n\\" else bytes((c,))
    return bytes(out)


def mounts_line(source: bytes, target: bytes, fstype: bytes, options: bytes) -> bytes:
    """One line of /proc/<pid>/mounts (fstab's format; the last two fields are always 0)."""
    return b"%s %s %s %s 0 0\n" % (mangle(source), mangle(target), mangle(fstype), options)


def mountinfo_line(mount_id: int, parent_id: int, dev: int, root: bytes, target: bytes,
                   mount_options: bytes, optional: list[bytes], fstype: bytes,
                   source: bytes, super_options: bytes) -> bytes:
    """One line of /proc/<pid>/mountinfo (proc(5)); `optional` are the propagation tags
    (b"shared:1", b"master:2" ...)."""
    tags = b"".join(b" " + tag for tag in optional)
    return b"%d %d %d:%d %s %s %s%s - %s %s %s\n" % (
        mount_id, parent_id, os.major(dev), os.minor(dev), mangle(root), mangle(target),
        mount_options, tags, mangle(fstype), mangle(source), super_options)


def _sealed_memfd(data: bytes) -> int:
    """A memfd holding `data`, at offset 0, sealed against any change, and never executable
    (mode 0444, and on Linux 6.3+ F_SEAL_EXEC): a guest that chooses what cmdline or
    environ say must not get a script it can fexecve."""
    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        fd = os.memfd_create("proc", flags | _MFD_NOEXEC_SEAL)
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
        fd = os.memfd_create("proc", flags)
    try:
        os.fchmod(fd, 0o444)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.lseek(fd, 0, os.SEEK_SET)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
    except BaseException:
        os.close(fd)
        raise
    return fd


# --- inodes -------------------------------------------------------------------------------

class _Node(Inode):
    """Any proc inode. A task's entry has `task` (the tid whose files it shows, and its
    thread group) and is owned by the task's owner whatever chown says, as Linux resets
    the owner at every lookup; any other is owned by root unless chowned.

    `refused` are the setattr fields answered EPERM. `host_key` is the (st_dev, st_ino) of
    the last descriptor `open_host` made. `immutable` is Linux's S_IMMUTABLE, which a
    process's directories have: nobody gets write access to them (EPERM, before any check
    of the mode bits), which is what the VFS's permission check should answer."""

    magic = False
    immutable = False
    size = 0
    _write_errno = errno.EACCES

    def __init__(self, fs: ProcFS, kind: Kind, mode: int, *,
                 task: tuple[int, int] | None = None, path: tuple | None = None,
                 refused: frozenset[str] | None = None, ino: int | None = None):
        self.fs = fs
        self.kind = kind
        self._mode = mode
        self.task = task
        self.path = path
        if ino is None:
            ino = fs._fixed_ino() if path is None else _path_ino(task[1], path)
        self.ino = ino
        self.dev = fs.dev
        self.atime_ns = self.mtime_ns = self.ctime_ns = fs.clock()
        self.refused = (_PROC_SETATTR if task else frozenset()) if refused is None else refused
        self._owner = (0, 0)
        self.host_key: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return f"<proc {self.kind.name} ino={self.ino}{' ' + repr(self.task) if self.task else ''}>"

    @property
    def mode(self) -> int:
        return self._mode

    @property
    def uid(self) -> int:
        return self._owners()[0]

    @property
    def gid(self) -> int:
        return self._owners()[1]

    @property
    def nlink(self) -> int:
        return 1

    def _owners(self) -> tuple[int, int]:
        if self.task is None:
            return self._owner
        try:
            return self.fs.view.owner(self.task[0])
        except OSError:
            return (0, 0)  # gone: whoever still stats it sees root's, as Linux

    # A task's entries work only while it lives, and some only for those who may
    # ptrace-read it.

    def _check_alive(self, code: int = errno.ENOENT) -> None:
        tid, tgid = self.task
        if self.fs.view.tgid_of(tid) != tgid:
            raise error(code)

    def _check_ptrace(self) -> None:
        if not self.fs.view.may_ptrace(self.task[1]):
            raise error(errno.EACCES)

    # Attributes.

    def setattr(self, *, mode=None, uid=None, gid=None, atime=None, mtime=None) -> None:
        asked = {name for name, value in (("mode", mode), ("uid", uid), ("gid", gid),
                                          ("atime", atime), ("mtime", mtime))
                 if value is not None}
        if asked & self.refused:
            raise error(errno.EPERM)
        if mode is not None and self.kind is Kind.LNK:
            raise error(errno.EOPNOTSUPP)
        for when in (atime, mtime):
            if (when is not None and when[1] not in (abi.UTIME_NOW, abi.UTIME_OMIT)
                    and not 0 <= when[1] < _NSEC):
                raise error(errno.EINVAL)
        now = self.fs.clock()
        if mode is not None:
            self._mode = mode & 0o7777
        if self.task is None and (uid is not None or gid is not None):
            old_uid, old_gid = self._owner
            self._owner = (old_uid if uid is None else uid, old_gid if gid is None else gid)
        self.set_times(atime, mtime, now)

    def statfs(self) -> StatfsResult:
        # Linux's fsid is the encoded device number (huge_encode_dev).
        major, minor = os.major(self.dev), os.minor(self.dev)
        fsid = (minor & 0xFF) | (major << 8) | ((minor & ~0xFF) << 12)
        return StatfsResult(self.fs.magic, _PAGE_SIZE, 0, 0, 0, 0, 0, fsid & 0xFFFFFFFF,
                            fsid >> 32, abi.NAME_MAX, _PAGE_SIZE, 0)

    # Host descriptors.

    def open_host(self, flags: int) -> int:
        if flags & abi.O_PATH:
            data = b""
        elif self.kind is Kind.LNK:
            raise error(errno.ELOOP)
        elif flags & abi.O_ACCMODE != abi.O_RDONLY:
            raise error(errno.EISDIR if self.is_dir else self._write_errno)
        else:
            data = self._data()
        fd = _sealed_memfd(data)
        st = os.fstat(fd)
        self.host_key = (st.st_dev, st.st_ino)
        self.fs._handed_out(self.host_key, self)
        return fd

    def _data(self) -> bytes:
        """What a new descriptor holds."""
        return b""


class _File(_Node):
    """A regular file whose content `generate()` makes at each open. A `gated` one shows
    the process's memory (environ, maps) and needs ptrace access."""

    def __init__(self, fs: ProcFS, mode: int, generate: Callable[[], bytes], *,
                 gated: bool = False, write_errno: int = errno.EACCES, **where):
        super().__init__(fs, Kind.REG, mode, **where)
        self._generate = generate
        self._gated = gated
        self._write_errno = write_errno

    def _data(self) -> bytes:
        if self.task is not None:
            self._check_alive(errno.ESRCH)
            if self._gated:
                self._check_ptrace()
        return self._generate()

    def read(self, offset: int, size: int) -> bytes:
        if offset < 0 or size < 0:
            raise error(errno.EINVAL)
        return self._data()[offset:offset + size]

    def write(self, offset: int, data: bytes) -> int:
        raise error(self._write_errno)

    def truncate(self, size: int, *, touch: bool = False) -> None:
        """Accepted and ignored, as Linux's procfs ignores a size."""


class _MemoryFile(_File):
    """A view of a process's address space that no content could hold (mem, pagemap: as
    large as the address space): its descriptor is the kernel's own file in the guest's pid
    namespace, opened by the Sentry once the asker passed the ptrace check. Read-only (the
    kernel would let root write another process's memory through mem). The Sentry lacks
    CAP_SYS_ADMIN, so pagemap shows no physical frame numbers, as to an unprivileged reader."""

    def __init__(self, fs: ProcFS, tid: int, name: str, **where):
        super().__init__(fs, 0o400 if name == "pagemap" else 0o600,
                         lambda: fs.view.host_read(tid, name), gated=True, **where)
        self._tid, self._name = tid, name

    def open_host(self, flags: int) -> int:
        if flags & abi.O_PATH or flags & abi.O_ACCMODE != abi.O_RDONLY:
            return super().open_host(flags)
        self._check_alive(errno.ESRCH)
        self._check_ptrace()
        fd = self.fs.view.host_open(self._tid, self._name)
        st = os.fstat(fd)
        self.host_key = (st.st_dev, st.st_ino)
        self.fs._handed_out(self.host_key, self)
        return fd

    def read(self, offset: int, size: int) -> bytes:
        return read_through_host(self, offset, size)


class _Symlink(_Node):
    """An ordinary symlink whose target may depend on who asks (self, thread-self)."""

    def __init__(self, fs: ProcFS, target: Callable[[], bytes], size: int = 0):
        super().__init__(fs, Kind.LNK, 0o777)
        self._target = target
        self.size = size  # Linux's: 0 for self and thread-self, the target's length else

    def readlink(self) -> bytes:
        return self._target()


class OutsideVFS(OSError):
    """A magic link was followed to something that is not a file of the VFS: ENXIO, with
    the link, whose `reopen` (when it has one) opens that object as Linux would."""

    def __init__(self, link: "_MagicLink"):
        super().__init__(errno.ENXIO, os.strerror(errno.ENXIO))
        self.link = link


class _MagicLink(_Node):
    """fd/<n>, cwd, root, exe: `target()` is a Dentry, the name of something outside the
    VFS (bytes), or None."""

    magic = True

    def __init__(self, fs: ProcFS, target: Callable[[], Dentry | bytes | None], **where):
        super().__init__(fs, Kind.LNK, 0o777, **where)
        self._target = target

    def readlink(self) -> bytes:
        target = self._follow()
        if not isinstance(target, Dentry):
            return target
        view = self.fs.view
        asker = view.current_tgid()
        if asker is None:
            raise error(errno.ENOENT)
        path, _ = d_path(target, view.root(asker))  # beyond the asker's root: from the top
        return path + b" (deleted)" if target.dead else path

    def jump(self) -> Dentry:
        """Where following the link lands: ENOENT when it points nowhere, OutsideVFS (an
        ENXIO) when at something outside the VFS (a pipe, a socket)."""
        target = self._follow()
        if not isinstance(target, Dentry):
            raise OutsideVFS(self)
        return target

    def _follow(self) -> Dentry | bytes:
        self._check_alive()
        self._check_ptrace()
        target = self._target()
        if target is None:
            raise error(errno.ENOENT)
        return target


class _FdLink(_MagicLink):
    """fd/<n>: its mode is how the descriptor is open (lr-x------ for reading, l-wx------
    for writing, lrwx------ for both), from the "flags:" line of its fdinfo."""

    size = _FD_LINK_SIZE

    def __init__(self, fs: ProcFS, fd: int, **where):
        tgid = where["task"][1]
        super().__init__(fs, lambda: fs.view.fd_file(tgid, fd), **where)
        self.fd = fd

    def reopen(self, flags: int) -> int:
        """A new open of what the descriptor is when that is not a file of the VFS (a pipe,
        a socket): what opening /proc/PID/fd/N gives on Linux."""
        self._follow()
        return self.fs.view.reopen_fd(self.task[1], self.fd, flags)

    @property
    def mode(self) -> int:
        try:
            info = self.fs.view.fdinfo(self.task[1], self.fd)
        except OSError:
            return 0
        for line in info.splitlines():
            if line.startswith(b"flags:"):
                flags = int(line.split()[1], 8)
                break
        else:
            return 0
        if flags & abi.O_PATH:
            return 0
        return _FD_LINK_MODES.get(flags & abi.O_ACCMODE, 0)


class _Dir(_Node):
    """A directory: `_entries` lists it, `_lookup` finds one name (None: not there)."""

    subdirs = 0

    def __init__(self, fs: ProcFS, mode: int = 0o555, **where):
        super().__init__(fs, Kind.DIR, mode, **where)

    @property
    def nlink(self) -> int:
        return 2 + self.subdirs

    def lookup(self, name: bytes) -> Inode:
        if len(name) > abi.NAME_MAX:
            raise error(errno.ENAMETOOLONG)
        found = self._lookup(name)
        if found is None:
            raise error(errno.ENOENT)
        return found

    def readdir(self) -> list[tuple[bytes, Inode]]:
        return self._entries()

    def _lookup(self, name: bytes) -> Inode | None:
        raise NotImplementedError

    def _entries(self) -> list[tuple[bytes, Inode]]:
        raise NotImplementedError

    # Nothing is added or removed from outside: Linux's procfs has no such operations
    # (vfs_create's EACCES, EPERM for the others).

    def create(self, name: bytes, kind: Kind, mode: int, uid: int, gid: int) -> Inode:
        raise error(errno.EACCES if kind is Kind.REG else errno.EPERM)

    def symlink(self, name: bytes, target: bytes, uid: int, gid: int) -> Inode:
        raise error(errno.EPERM)

    def link(self, name: bytes, inode: Inode) -> None:
        raise error(errno.EPERM)

    def unlink(self, name: bytes) -> None:
        raise error(errno.EPERM)

    def rmdir(self, name: bytes) -> None:
        raise error(errno.EPERM)

    def rename(self, old_name: bytes, new_dir: Inode, new_name: bytes, flags: int = 0) -> None:
        raise error(errno.EPERM)


class _StaticDir(_Dir):
    """A directory with fixed entries (/proc/sys, /proc/sys/kernel)."""

    def __init__(self, fs: ProcFS, entries: dict[bytes, _Node], **kw):
        super().__init__(fs, **kw)
        self.fixed = entries
        self.subdirs = sum(1 for node in entries.values() if node.is_dir)

    def _lookup(self, name: bytes) -> Inode | None:
        return self.fixed.get(name)

    def _entries(self) -> list[tuple[bytes, Inode]]:
        return list(self.fixed.items())


class _Root(_StaticDir):
    """/proc: the fixed entries, then a directory per thread group."""

    def __init__(self, fs: ProcFS):
        view = fs.view
        ino = fs._fixed_ino()  # 1, as Linux's PROC_ROOT_INO

        def file(method: str) -> _File:
            return _File(fs, 0o444, lambda: getattr(view, method)())

        super().__init__(fs, {
            b"self": _Symlink(fs, self._self),
            b"thread-self": _Symlink(fs, self._thread_self),
            b"cpuinfo": file("cpuinfo"),
            b"filesystems": _File(fs, 0o444, lambda: b"".join(b"nodev\t%s\n" % f
                                                              for f in FILESYSTEMS)),
            b"loadavg": file("loadavg"),
            b"meminfo": file("meminfo"),
            b"stat": file("stat"),
            b"version": file("version"),
            b"mounts": _Symlink(fs, lambda: b"self/mounts", len(b"self/mounts")),
            b"net": _Symlink(fs, lambda: b"self/net", len(b"self/net")),
            b"sys": _sys_dir(fs),
            b"sysvipc": _StaticDir(fs, {name: _File(fs, 0o444,
                                                    lambda name=name: view.sysvipc(name.decode()))
                                        for name in (b"msg", b"sem", b"shm")}),
            b"uptime": file("uptime"),
        }, ino=ino)

    @property
    def nlink(self) -> int:
        return 2 + self.subdirs + len(self.fs.view.tgids())

    def _self(self) -> bytes:
        tgid = self.fs.view.current_tgid()
        if tgid is None:
            raise error(errno.ENOENT)
        return b"%d" % tgid

    def _thread_self(self) -> bytes:
        view = self.fs.view
        tgid, tid = view.current_tgid(), view.current_tid()
        if tgid is None or tid is None:
            raise error(errno.ENOENT)
        return b"%d/task/%d" % (tgid, tid)

    def _lookup(self, name: bytes) -> Inode | None:
        found = self.fixed.get(name)
        if found is not None:
            return found
        pid = _number(name)
        if pid is None:
            return None
        # Any thread's id names a directory, though only the leaders' are listed (Linux).
        tgid = self.fs.view.tgid_of(pid)
        return None if tgid is None else _TaskDir.of(self.fs, (pid,), pid, tgid)

    def _entries(self) -> list[tuple[bytes, Inode]]:
        fs = self.fs
        return [*self.fixed.items(),
                *((b"%d" % tgid, _TaskDir.of(fs, (tgid,), tgid, tgid)) for tgid in fs.view.tgids())]


def _sys_dir(fs: ProcFS) -> "_StaticDir":
    """/proc/sys: sysctl.names(), each generated by the view (kernel/sysctl.py says whence)."""
    tree: dict = {}
    for name, mode in sysctl.names().items():
        *dirs, leaf = name.encode().split(b"/")
        where = tree
        for d in dirs:
            where = where.setdefault(d, {})
        where[leaf] = _File(fs, mode, lambda name=name: fs.view.sysctl(name),
                            write_errno=errno.EROFS, refused=_SYSCTL_SETATTR)

    def directory(entries: dict) -> _StaticDir:
        return _StaticDir(fs, {name: directory(node) if isinstance(node, dict) else node
                               for name, node in sorted(entries.items())},
                          refused=_SYSCTL_SETATTR)
    return directory(tree)


# --- /proc/<pid> and /proc/<pid>/task/<tid> ------------------------------------------------

def _host_file(name: str, mode: int = 0o444, gated: bool = False):
    def make(fs: ProcFS, tid: int, tgid: int, **where) -> _File:
        return _File(fs, mode, lambda: fs.view.host_read(tid, name), gated=gated, **where)
    return make


def _memory_file(name: str):
    def make(fs: ProcFS, tid: int, tgid: int, **where) -> _MemoryFile:
        return _MemoryFile(fs, tid, name, **where)
    return make


def _view_file(method: str):
    def make(fs: ProcFS, tid: int, tgid: int, **where) -> _File:
        return _File(fs, 0o444, lambda: getattr(fs.view, method)(tgid), **where)
    return make


def _link(method: str):
    def make(fs: ProcFS, tid: int, tgid: int, **where) -> _MagicLink:
        return _MagicLink(fs, lambda: getattr(fs.view, method)(tgid), **where)
    return make


def _fd_dir(info: bool):
    def make(fs: ProcFS, tid: int, tgid: int, **where) -> "_FdDir":
        return _FdDir(fs, info=info, **where)
    return make


def _task_list(fs: ProcFS, tid: int, tgid: int, **where) -> "_TaskList":
    return _TaskList(fs, **where)


# ns/: a link per namespace the task is in, readlink giving Linux's "net:[4026531840]" (what
# lsns and container checks compare). Opening one gives the kernel's namespace file of that
# guest task (the guest's own namespaces, never one of the host's): setns is denied, and the
# nsfs ioctls, which name the namespaces above the guest's (NS_GET_PARENT, NS_GET_USERNS),
# are refused by the filter (syscall_tables/policy.py).
NAMESPACES = (b"cgroup", b"ipc", b"mnt", b"net", b"pid", b"pid_for_children", b"time",
              b"time_for_children", b"user", b"uts")
# net/: the kernel's tables for the task's network namespace, the guest's own (netstat,
# ifconfig and psutil read them); the files that describe only that namespace.
NET_FILES = (b"arp", b"dev", b"if_inet6", b"igmp", b"igmp6", b"ipv6_route", b"netlink",
             b"netstat", b"packet", b"raw", b"raw6", b"route", b"snmp", b"snmp6",
             b"sockstat", b"sockstat6", b"tcp", b"tcp6", b"udp", b"udp6", b"unix")


class _NsLink(_MagicLink):
    """ns/<name>: followed, it is outside the VFS; opened, the task's own namespace file."""

    def __init__(self, fs: ProcFS, tid: int, tgid: int, name: bytes, **where):
        super().__init__(fs, lambda: fs.view.namespace(tgid, name), **where)
        self._tid, self._name = tid, name.decode()

    def reopen(self, flags: int) -> int:
        if flags & abi.O_ACCMODE != abi.O_RDONLY:
            raise error(errno.EACCES)  # nsfs files are read-only (0444) for everyone
        self._follow()  # alive, and the asker may ptrace-read it
        return self.fs.view.host_open(self._tid, f"ns/{self._name}")


def _ns_dir(fs: ProcFS, tid: int, tgid: int, **where) -> "_NamedEntries":
    def link(name: bytes, **where) -> _MagicLink:
        return _NsLink(fs, tid, tgid, name, **where)
    return _NamedEntries(fs, 0o511, NAMESPACES, link, **where)


def _net_dir(fs: ProcFS, tid: int, tgid: int, **where) -> "_NamedEntries":
    def table(name: bytes, **where) -> _File:
        return _File(fs, 0o444, lambda: fs.view.net_table(tid, name.decode()), **where)
    return _NamedEntries(fs, 0o555, NET_FILES, table, **where)


def _cpuset(fs: ProcFS, tid: int, tgid: int, **where) -> _File:
    # cpuset: the task's cpuset cgroup, as from a cgroup namespace rooted at the sandbox's
    # own (as cgroup is): the host's path names the host's hierarchy.
    return _File(fs, 0o444, lambda: b"/\n", **where)


def _mountstats(fs: ProcFS, tid: int, tgid: int, **where) -> _File:
    # The kernel's would name the view's mounts; these are the Sentry's (no file system of
    # the guest's keeps statistics, which Linux shows for NFS only).
    def generate() -> bytes:
        lines = (line.split(b" ") for line in fs.view.mounts(tgid).splitlines())
        return b"".join(b"device %s mounted on %s with fstype %s\n" % (f[0], f[1], f[2])
                        for f in lines)
    return _File(fs, 0o400, generate, gated=True, **where)


def _refused_file(mode: int, code: int):
    """A file that is there and that no guest reads: stack (Linux asks for CAP_SYS_ADMIN in
    the host's user namespace: it is the host kernel's stack), clear_refs (write-only)."""
    def generate() -> bytes:
        raise error(code)

    def make(fs: ProcFS, tid: int, tgid: int, **where) -> _File:
        return _File(fs, mode, generate, **where)
    return make


def _children(fs: ProcFS, tid: int, tgid: int, **where) -> _File:
    return _File(fs, 0o444, lambda: fs.view.host_read(tid, f"task/{tid}/children"), **where)


def _attr_dir(fs: ProcFS, tid: int, tgid: int, **where) -> "_HostDir":
    return _HostDir(fs, tid, "attr", **where)


def _map_files_dir(fs: ProcFS, tid: int, tgid: int, **where) -> "_MapFiles":
    return _MapFiles(fs, tid, **where)


# A task directory's entries, in Linux's order, and how each is made. Every name the
# kernel's task directories hold is here: the kernel resolves guest paths in the host
# view's procfs after the Sentry checked them (exec, chdir, chroot, inotify_add_watch, unix
# socket names), so whatever it can reach there must be something this /proc shows too
# (docs/architecture.md). What is shown is the guest's own state, from the guest's own
# procfs, read-only: no write reaches the kernel's files (_File.write).
_TASK_ENTRIES = {
    b"task": _task_list,
    b"fd": _fd_dir(info=False),
    b"map_files": _map_files_dir,
    b"fdinfo": _fd_dir(info=True),
    b"ns": _ns_dir,
    b"net": _net_dir,
    b"environ": _host_file("environ", 0o400, gated=True),
    b"auxv": _host_file("auxv", 0o400, gated=True),
    b"status": _host_file("status"),
    b"personality": _host_file("personality", 0o400, gated=True),
    b"limits": _host_file("limits"),
    b"sched": _host_file("sched", 0o644),
    b"autogroup": _host_file("autogroup", 0o644),
    b"timens_offsets": _host_file("timens_offsets", 0o644),
    b"comm": _host_file("comm", 0o644),
    b"syscall": _host_file("syscall", 0o400, gated=True),
    b"cmdline": _host_file("cmdline"),
    b"stat": _host_file("stat"),
    b"statm": _host_file("statm"),  # top's VIRT and RES
    b"maps": _host_file("maps", gated=True),
    b"numa_maps": _host_file("numa_maps", gated=True),
    b"mem": _memory_file("mem"),
    b"cwd": _link("cwd"),
    b"root": _link("root"),
    b"exe": _link("exe"),
    b"mounts": _view_file("mounts"),
    b"mountinfo": _view_file("mountinfo"),
    b"mountstats": _mountstats,
    b"clear_refs": _refused_file(0o200, errno.EINVAL),
    b"smaps": _host_file("smaps", gated=True),
    b"smaps_rollup": _host_file("smaps_rollup", gated=True),
    b"pagemap": _memory_file("pagemap"),
    b"attr": _attr_dir,
    b"wchan": _host_file("wchan", gated=True),  # a host kernel function's name
    b"stack": _refused_file(0o400, errno.EACCES),
    b"schedstat": _host_file("schedstat"),
    b"cpuset": _cpuset,
    b"cgroup": _view_file("cgroup"),
    b"oom_score": _host_file("oom_score"),
    b"oom_adj": _host_file("oom_adj", 0o644),
    b"oom_score_adj": _host_file("oom_score_adj", 0o644),
    b"loginuid": _host_file("loginuid", 0o644),
    b"sessionid": _host_file("sessionid"),
    b"coredump_filter": _host_file("coredump_filter", 0o644),
    b"io": _host_file("io", 0o400, gated=True),
    b"uid_map": _host_file("uid_map", 0o644),
    b"gid_map": _host_file("gid_map", 0o644),
    b"projid_map": _host_file("projid_map", 0o644),
    b"setgroups": _host_file("setgroups", 0o644),
    b"timers": _host_file("timers"),
    b"timerslack_ns": _host_file("timerslack_ns", 0o666),
    b"children": _children,
    b"arch_status": _host_file("arch_status"),
    b"ksm_merging_pages": _host_file("ksm_merging_pages", 0o400, gated=True),
    b"ksm_stat": _host_file("ksm_stat", 0o400, gated=True),
}
# Which entries only one of the two levels has, as Linux's tgid_base_stuff and
# tid_base_stuff.
_GROUP_ONLY = frozenset({b"task", b"map_files", b"autogroup", b"timens_offsets",
                         b"mountstats", b"coredump_filter", b"timers", b"timerslack_ns"})
_THREAD_ONLY = frozenset({b"children"})
_SUBDIRS = frozenset({b"task", b"fd", b"map_files", b"fdinfo", b"ns", b"net", b"attr"})


class _TaskDir(_Dir):
    """/proc/<pid> (with task/), or /proc/<pid>/task/<tid>: immutable, so any attribute
    change is refused too."""

    immutable = True

    def __init__(self, fs: ProcFS, **where):
        super().__init__(fs, refused=_ALL_SETATTR, **where)
        self.group = len(where["path"]) == 1
        other = _THREAD_ONLY if self.group else _GROUP_ONLY
        self.names = [name for name in _TASK_ENTRIES if name not in other]
        self.subdirs = len(_SUBDIRS.intersection(self.names))

    @staticmethod
    def of(fs: ProcFS, path: tuple, tid: int, tgid: int) -> "_TaskDir":
        return fs._task_node(path, (tid, tgid), lambda **where: _TaskDir(fs, **where))

    def _lookup(self, name: bytes) -> Inode | None:
        self._check_alive()
        return self._child(name) if name in self.names else None

    def _entries(self) -> list[tuple[bytes, Inode]]:
        self._check_alive()
        return [(name, self._child(name)) for name in self.names]

    def _child(self, name: bytes) -> Inode:
        tid, tgid = self.task
        make = _TASK_ENTRIES[name]
        return self.fs._task_node(self.path + (name,), self.task,
                                  lambda **where: make(self.fs, tid, tgid, **where))


class _TaskList(_Dir):
    """/proc/<pid>/task: a directory per thread of the group."""

    @property
    def nlink(self) -> int:
        try:
            return 2 + len(self.fs.view.tids(self.task[1]))
        except OSError:
            return 2

    def _thread(self, tid: int) -> _TaskDir:
        return _TaskDir.of(self.fs, self.path + (tid,), tid, self.task[1])

    def _lookup(self, name: bytes) -> Inode | None:
        self._check_alive()
        tid = _number(name)
        if tid is None or self.fs.view.tgid_of(tid) != self.task[1]:
            return None
        return self._thread(tid)

    def _entries(self) -> list[tuple[bytes, Inode]]:
        self._check_alive()
        return [(b"%d" % tid, self._thread(tid)) for tid in self.fs.view.tids(self.task[1])]


class _FdDir(_Dir):
    """fd/ (magic links, dr-x------) or fdinfo/ (files, dr-xr-xr-x): one entry per open
    descriptor, for those who may ptrace-read the process."""

    def __init__(self, fs: ProcFS, *, info: bool, **where):
        super().__init__(fs, 0o555 if info else 0o500, **where)
        self.info = info

    def _entry(self, fd: int) -> Inode:
        fs, tgid = self.fs, self.task[1]
        if self.info:
            def make(**where):
                return _File(fs, 0o444, lambda: fs.view.fdinfo(tgid, fd), **where)
        else:
            def make(**where):
                return _FdLink(fs, fd, **where)
        return fs._task_node(self.path + (fd,), self.task, make)

    def _lookup(self, name: bytes) -> Inode | None:
        self._check_alive()
        self._check_ptrace()
        fd = _number(name)
        if fd is None or self.fs.view.fd_file(self.task[1], fd) is None:
            return None
        return self._entry(fd)

    def _entries(self) -> list[tuple[bytes, Inode]]:
        self._check_alive()
        self._check_ptrace()
        return [(b"%d" % fd, self._entry(fd)) for fd in self.fs.view.fds(self.task[1])]


class _NamedEntries(_Dir):
    """A task's directory of fixed names, each entry made by `make(name, **where)`."""

    def __init__(self, fs: ProcFS, mode: int, names: tuple[bytes, ...], make, **where):
        super().__init__(fs, mode, **where)
        self.names, self.make = names, make

    def _entry(self, name: bytes) -> Inode:
        return self.fs._task_node(self.path + (name,), self.task,
                                  lambda **where: self.make(name, **where))

    def _lookup(self, name: bytes) -> Inode | None:
        self._check_alive()
        return self._entry(name) if name in self.names else None

    def _entries(self) -> list[tuple[bytes, Inode]]:
        self._check_alive()
        return [(name, self._entry(name)) for name in self.names]


def _host_listing(fs: ProcFS, tid: int, name: str) -> dict[bytes, bool]:
    """The names in the kernel's /proc/TID/NAME, each with whether it is a directory."""
    try:
        fd = fs.view.host_open(tid, name)
    except FileNotFoundError:
        raise error(errno.ENOENT) from None
    try:
        with os.scandir(fd) as entries:
            return {os.fsencode(e.name): e.is_dir(follow_symlinks=False) for e in entries}
    finally:
        os.close(fd)


class _HostDir(_Dir):
    """A task's directory whose names are the kernel's (attr/, with a subdirectory per
    security module the host kernel has): each file reads the guest task's own, read-only,
    so that no guest changes its security label or anyone else's through it."""

    _FILE_MODES = {b"current": 0o666, b"exec": 0o666, b"fscreate": 0o666,
                   b"keycreate": 0o666, b"sockcreate": 0o666}  # 0444 for prev and the rest

    def __init__(self, fs: ProcFS, tid: int, name: str, **where):
        super().__init__(fs, 0o555, **where)
        self._tid, self._name = tid, name

    def _host_entries(self) -> dict[bytes, bool]:
        return _host_listing(self.fs, self._tid, self._name)

    def _entry(self, name: bytes, is_dir: bool) -> Inode:
        host = f"{self._name}/{name.decode()}"
        if is_dir:
            make = lambda **where: _HostDir(self.fs, self._tid, host, **where)
        else:
            make = lambda **where: _File(
                self.fs, self._FILE_MODES.get(name, 0o444),
                lambda: self.fs.view.host_read(self._tid, host), **where)
        return self.fs._task_node(self.path + (name,), self.task, make)

    @property
    def subdirs(self) -> int:
        try:
            return sum(self._host_entries().values())
        except OSError:
            return 0

    def _lookup(self, name: bytes) -> Inode | None:
        self._check_alive()
        is_dir = self._host_entries().get(name)
        return None if is_dir is None else self._entry(name, is_dir)

    def _entries(self) -> list[tuple[bytes, Inode]]:
        self._check_alive()
        return [(name, self._entry(name, is_dir))
                for name, is_dir in self._host_entries().items()]


class _MapFiles(_Dir):
    """map_files/: a link per file mapping of the process, named by its address range, as
    the kernel lists it. Following or reading one needs CAP_CHECKPOINT_RESTORE in the host's
    user namespace, which no guest has: Linux's lookup answers EPERM, and so does this one
    (a link would hand the guest the host's mapped file)."""

    def __init__(self, fs: ProcFS, tid: int, **where):
        super().__init__(fs, 0o500, **where)
        self._tid = tid

    def _names(self) -> list[bytes]:
        self._check_alive()
        self._check_ptrace()
        return list(_host_listing(self.fs, self._tid, "map_files"))

    def _lookup(self, name: bytes) -> Inode | None:
        if name in self._names():
            raise error(errno.EPERM)
        return None

    def _entries(self) -> list[tuple[bytes, Inode]]:
        return [(name, self.fs._task_node(
                    self.path + (name,), self.task,
                    lambda **where: _MapFileLink(self.fs, Kind.LNK, 0o400, **where)))
                for name in self._names()]


class _MapFileLink(_Node):
    """A map_files/ entry as readdir shows it; reading it is refused as its lookup is."""

    def readlink(self) -> bytes:
        raise error(errno.EPERM)


class SysFS(ProcFS):
    """A minimal /sys, built from the same read-only nodes: the CPU ranges glibc and language
    runtimes read to count processors, and the usual top-level directories, empty. Nothing
    of the host's sysfs (its devices, its network namespace) shows through."""

    magic = SYSFS_MAGIC

    def __init__(self, *, dev: int, cpus: int, clock: Callable[[], int] = time.time_ns):
        self._cpus = cpus
        super().__init__(None, dev=dev, clock=clock)

    def _make_root(self) -> "_Node":
        span = b"0\n" if self._cpus == 1 else b"0-%d\n" % (self._cpus - 1)

        def directory(entries=None) -> _StaticDir:
            return _StaticDir(self, entries or {})

        cpu = directory({name: _File(self, 0o444, lambda: span)
                         for name in (b"online", b"possible", b"present")})
        return directory({
            b"block": directory(), b"bus": directory(), b"class": directory(),
            b"dev": directory(), b"devices": directory({b"system": directory({b"cpu": cpu})}),
            b"firmware": directory(), b"fs": directory({b"cgroup": directory()}),
            b"kernel": directory(), b"module": directory(),
        })
