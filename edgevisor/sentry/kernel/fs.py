"""The guest's file system as the Sentry keeps it, and the bridge from a task to it.

The Sentry decides every path: it resolves it in its own VFS (`table`), checks the
permissions and performs the operation through the file systems of its mounts. What the
host kernel already keeps exactly, the Sentry reads back from it instead of tracking a copy
that fork, clone, exec and close would have to keep in step:

- descriptor tables: guest descriptors are host descriptors the Sentry installed (or that a
  passthrough syscall created from nothing). A descriptor is mapped back to its file by the
  host identity of its description (st_dev, st_ino), remembered when the Sentry opened it,
  or else by the name the host gives it in /proc/TID/fd;
- cwd, root and umask (the fs_struct): chdir, fchdir and chroot are decided by the Sentry and
  then run by the host kernel in the guest's host view, which mirrors the Sentry's mount
  tree (the same host objects at the same places), and umask is the kernel's. The Sentry
  reads them back from /proc/TID/{cwd,root,status} of the guest's pid namespace.
"""

import errno
import fcntl
import os
import re
import stat

from ... import abi
from ..answers import InstallFd, WaitFd
from ...gofer.hostcalls import openat2
from ..fsimpl.directfs import open_beneath
from ..fsimpl.gofer import Generation, GoferDirectory, GoferInode
from ..vfs import Credentials, Dentry, FSContext, Kind, MountTable, d_path, lookup
from . import procfs
from .fifo import open_fifo

# Host identities remembered with the dentry they were opened or entered through. Each pins
# its dentry, so a host descriptor (its inode's) of the Sentry's RLIMIT_NOFILE: with the
# dentry LRU (mount.DENTRY_LRU) and the gofer mounts' inode caches, what the caches alone
# hold stays near 10 000. An identity past the bound is found again by the name /proc gives
# it (`descriptor`), checked to be the same host file; one that has no name any more (a
# deleted file still open, an O_PATH stand-in) is then unknown.
_CACHE_LIMIT = 4096
_CREDS_KEPT = 4096


_IN_VIEW = abi.RESOLVE_IN_ROOT | abi.RESOLVE_NO_SYMLINKS | abi.RESOLVE_NO_MAGICLINKS


def _unescape(field: bytes) -> bytes:
    """A mountinfo path: space, tab, newline and backslash come as octal escapes."""
    return re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m[1], 8)]), field)


class ViewPlan:
    """The guest's root in its view (`root`, an O_PATH descriptor, and its mount id), the
    other mounts whose stats are the host's ([(path, mount id, descriptor of its root)],
    a mount within another first) and the host identities of the names the Sentry mounts
    over where the view has no mount (`covered`: [(st_dev, st_ino, the view's mount it is
    on, its path)], /sys's directory, which only the Sentry's walk enters). The descriptors
    are the platform's to keep."""

    __slots__ = ("covered", "mounts", "root", "root_mount")

    def __init__(self, root: int, root_mount: int, covered: list[tuple[int, int, int, bytes]]):
        self.root = root
        self.root_mount = root_mount
        self.mounts: list[tuple[bytes, int, int]] = []
        self.covered = covered


class FileSystem:
    def __init__(self, table: MountTable, proc_fd: int, generation: Generation | None = None,
                 creds: Credentials | None = None, view=None, direct: bool = False):
        self.table = table
        # (gofer client, mount number) of the guest's own root: descriptors of host files
        # are opened there, by their path, so that they live on the guest's own mounts.
        self.view = view
        # directfs (fsimpl/directfs.py): mount -> an O_PATH descriptor of its root in the
        # view, donated by the gofer when first needed (-1: that mount is the gofer's);
        # None when every open goes through the gofer.
        self._view_roots: dict | None = {} if direct and view is not None else None
        self.proc_fd = proc_fd  # the guest pid namespace's procfs, for the fs_struct state
        self.generation = generation or Generation()
        # Fixed credentials (tests), or None: each task's own, read back from the kernel.
        self._fixed_creds = creds
        self.kernel = None  # set by whoever serves a kernel: its `current` task asks
        self._creds: dict[tuple[int, int], Credentials] = {}  # task identity -> creds
        # The last asker and its credentials: a handler asks several times per syscall, and
        # the platform makes a Task per syscall, so this saves the identity's fstat.
        self._asker: tuple[object, Credentials] | None = None
        self._known: dict[tuple[int, int], Dentry] = {}  # host identity -> dentry
        self.chrooted = False  # until a task chroots, every root is the mount table's
        # Bumped when credentials may change: the platform then forgets which tasks it
        # found may search every directory.
        self.trust_epoch = 0
        # The mounts whose files answer stat with their host stat, the same host objects the
        # guest's view has at the same place (gofer mounts but /dev and a file volume's):
        # mount -> its path in the guest (`view_plan`).
        self.host_stat_mounts: dict = {}
        self.synthetic = []  # file systems whose descriptors are not the files themselves
        self.mount_names = {}  # Mount -> (source, fstype)
        self._path_only_keys: dict[tuple[int, int], Dentry] = {}  # O_PATH stand-ins
        # Host identities of the descriptors the front end handed the guest (its stdin,
        # stdout, stderr ...): files of the user's, not of the guest's view.
        self.handed: frozenset[tuple[int, int]] = frozenset()
        # Host identities of the ptys handed to the guest -> their names in its devpts
        # (fsimpl/terminal.py): what /proc/PID/fd/N of one reads as, and leads to.
        self.terminals: dict[tuple[int, int], Dentry] = {}
        self.reserved_ptys: list[int] = []  # the masters that hold those names

    @property
    def creds(self) -> Credentials:
        """The asking task's credentials, as the kernel keeps them (set*id and capset are
        the kernel's, inside the guest's namespaces), read from /proc/TID/status. Kept per
        task, known by its pidfd's identity, until a syscall that may change credentials
        (`forget_creds`) comes by."""
        if self._fixed_creds is not None:
            return self._fixed_creds
        task = self.kernel.current if self.kernel is not None else None
        if task is None:
            return Credentials.root()
        asker = self._asker
        if asker is not None and asker[0] is task:
            return asker[1]
        try:
            key = task.identity()
        except ProcessLookupError:
            raise OSError(errno.ESRCH, "task gone") from None
        creds = self._creds.get(key)
        if creds is None:
            creds = Credentials.from_status(procfs.read(self.proc_fd, f"{task.tid}/status"))
            if len(self._creds) >= _CREDS_KEPT:
                self._creds.clear()
            self._creds[key] = creds
        self._asker = (task, creds)
        return creds

    def forget_creds(self) -> None:
        """A syscall that may change a task's credentials is about to run (set*id, capset,
        prctl, exec): read them afresh next time."""
        self._creds.clear()
        self._asker = None
        self.trust_epoch += 1

    def view_plan(self, pid: int) -> "ViewPlan | None":
        """What the seccomp platform needs to answer stats and read-opens of host files
        itself (its C loop's in_view, platform/c/notify.c), from task `pid`'s view; None without
        directfs (the Sentry may then open nothing itself), after a chroot, or when a name
        the Sentry mounts over where the view has no mount is not an empty directory."""
        if self._view_roots is None or self.chrooted:
            return None
        points = {}  # mount point in the view -> mount id
        for line in procfs.read(self.proc_fd, f"{pid}/mountinfo").splitlines():
            fields = line.split()
            points[_unescape(fields[4])] = int(fields[0])
        root_path = self.table.root.root
        covered = []
        for mount in self.table.mounts()[1:]:
            path, _ = d_path(mount.root, root_path)
            if path in points:
                continue
            under = mount.mountpoint.inode  # the view shows this name as it is
            parent, _ = d_path(mount.parent.root, root_path)
            if (not isinstance(under, GoferDirectory) or under.readdir()
                    or parent not in points):
                return None
            covered.append((*under.host_key, points[parent], path))
        if b"/" not in points:
            return None
        root = os.open(f"{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC,
                       dir_fd=self.proc_fd)
        plan = ViewPlan(root, points[b"/"], covered)
        for mount, path in self.host_stat_mounts.items():
            if mount is self.table.root or path not in points:
                continue
            try:
                fd = openat2(root, path.lstrip(b"/"), os.O_PATH | os.O_DIRECTORY
                             | os.O_CLOEXEC, 0, _IN_VIEW)
            except OSError:
                continue
            plan.mounts.append((path, points[path], fd))
        plan.mounts.sort(key=lambda m: -len(m[0]))  # a mount within another first
        return plan

    # Host identity <-> dentry --------------------------------------------------------

    def known(self, key: tuple[int, int]) -> Dentry | None:
        """The dentry a host identity was opened or entered through, removed since or not:
        a task may hold a deleted file open, or sit in a deleted directory, as on Linux.
        (The identity cannot be another file's meanwhile: the dentry's inode holds the host
        file open, so its inode number is not reused.) Not a file whose last name the guest
        removed: the Sentry let go of it then (GoferInode.release), so the number may be a
        new file's (an O_PATH stand-in's identity is its memfd's, still its own). A handed
        terminal: its name in the guest's devpts."""
        dentry = self.terminals.get(key) or self._known.get(key)
        if (dentry is not None and getattr(dentry.inode, "released", False)
                and key not in self._path_only_keys):
            del self._known[key]
            return None
        return dentry

    def mount_info(self, mount) -> tuple[bytes, bytes]:
        """(source, fstype) of a mount, as /proc/PID/mounts shows them."""
        return self.mount_names.get(mount, (b"none", b"none"))

    def remember(self, key: tuple[int, int], dentry: Dentry) -> None:
        evicted = _put_bounded(self._known, key, dentry)
        if evicted is not None:
            # An O_PATH stand-in is remembered in both: one bound for the two.
            self._path_only_keys.pop(evicted, None)

    def by_host_name(self, link: str, key: tuple[int, int]) -> Dentry | None:
        """The dentry a /proc link text names: a path in the guest's host view, which is
        the Sentry's mount tree, or None for anything else (pipe:[..], a deleted file).
        The name is re-found from the top, so what it leads to must still be the file of
        host identity `key`; else None (replaced since, as a rename could have done)."""
        if not link.startswith("/") or link.endswith(" (deleted)"):
            return None
        root = self.table.root.root
        try:
            dentry = lookup(FSContext(root), Credentials.root(), None, os.fsencode(link),
                            follow=False)
        except OSError:
            return None
        if self.is_host_file(dentry.inode) and dentry.inode.host_key != key:
            return None
        return dentry

    def task_dentry(self, tid: int, what: str, proc: int | None = None) -> Dentry | None:
        """Where /proc/TID/`what` (cwd, root, exe) of a procfs (by default the Sentry's
        own, whose numbering the kernel reports tids in) points in the VFS, or None."""
        proc = self.proc_fd if proc is None else proc
        try:
            st = os.stat(f"{tid}/{what}", dir_fd=proc)
        except FileNotFoundError:
            raise OSError(errno.ESRCH, "task gone") from None
        key = (st.st_dev, st.st_ino)
        dentry = self.known(key)
        if dentry is not None:
            return dentry
        try:
            dentry = self.by_host_name(os.readlink(f"{tid}/{what}", dir_fd=proc), key)
        except FileNotFoundError:
            raise OSError(errno.ESRCH, "task gone") from None
        if dentry is not None:
            self.remember(key, dentry)
        return dentry

    # A task's fs_struct ----------------------------------------------------------------

    def cwd(self, task) -> Dentry:
        dentry = self.task_dentry(task.tid, "cwd")
        if dentry is None:
            raise OSError(errno.ENOENT, "the working directory is gone")
        return dentry

    def root(self, task) -> Dentry:
        return self.root_of(task.tid)

    def root_of(self, tid: int, proc: int | None = None) -> Dentry:
        if not self.chrooted:
            return self.table.root.root
        dentry = self.task_dentry(tid, "root", proc)
        return self.table.root.root if dentry is None else dentry

    def umask(self, task) -> int:
        for line in procfs.read(self.proc_fd, f"{task.tid}/status").splitlines():
            if line.startswith(b"Umask:"):
                return int(line.split()[1], 8)
        return 0o022

    def context(self, task, path: bytes = b"", *, umask: bool = False) -> FSContext:
        """The task's root, cwd (only looked up for a relative `path`) and umask (only
        when a file may be created)."""
        root = self.root(task)
        cwd = root if path[:1] == b"/" else self.cwd(task)
        return FSContext(root, cwd, self.umask(task) if umask else 0)

    # Descriptors --------------------------------------------------------------------

    def open(self, dentry: Dentry, flags: int, created: "CreatingOpen | None" = None) -> int:
        """A new host descriptor for the file at `dentry`, opened with `flags`, or the one
        `created` made it with.

        A file of a host file system is opened by the gofer in the guest's own root, by the
        name the Sentry just resolved it to: the descriptor then lives on the guest's own
        mounts, so that what the kernel later does with it by itself (fchdir, then a
        relative exec; execveat from it; its name in /proc) stays where the Sentry's view
        says. The result must still be the inode the Sentry resolved (opening for write may
        copy it up, which the inode then shows too): after a rename in between, EAGAIN,
        never another file. The descriptor's identity is remembered as this dentry's."""
        inode = dentry.inode
        fd = created.take() if created is not None else None
        if fd is None:
            if flags & os.O_PATH and not inode.is_dir:
                return self._path_only(dentry)
            if flags & os.O_PATH:
                # A directory opened for reading serves every use of an O_PATH one (fchdir,
                # *at, fstat) and, unlike it, can be installed (NOTIF_ADDFD takes no O_PATH
                # file).
                flags = os.O_RDONLY | os.O_DIRECTORY
            if self.view is None or not self.is_host_file(inode):
                fd = inode.open_host(flags)
            else:
                fd = self._open_in_view(dentry, flags)
        try:
            st = os.fstat(fd)
            key = (st.st_dev, st.st_ino)
            if self.is_host_file(inode) and key != inode.host_key:
                inode.refresh()
                if key != inode.host_key:
                    raise OSError(errno.EAGAIN, "renamed while being opened")
        except BaseException:
            os.close(fd)
            raise
        self.remember(key, dentry)
        return fd

    def open_fifo(self, dentry: Dentry, flags: int, cloexec: bool) -> InstallFd | WaitFd:
        """A fifo of a host file system, opened by the Sentry from the inode it resolved
        (never by a name the guest could change meanwhile), or a WaitFd when the open waits
        for its peer (see kernel/fifo.py)."""
        return open_fifo(self.proc_fd, dentry.inode.path_fd, flags, cloexec)

    def creating(self, flags: int) -> "CreatingOpen":
        """How an open with `flags` (the host's) makes the file O_CREAT did not find: pass
        it to vfs.openat as `create`, then to `open`."""
        return CreatingOpen(self, flags)

    def forget_absent(self) -> None:
        """Every host file system forgets the names it remembers absent (see sys_bind)."""
        for mount in self.table.mounts():
            forget = getattr(getattr(mount.root.inode, "fs", None), "forget_absent", None)
            if forget is not None:
                forget()

    def _open_in_view(self, dentry: Dentry, flags: int) -> int:
        inode = dentry.inode
        if self._view_roots is not None and inode.kind in (Kind.REG, Kind.DIR) and not (
                flags & os.O_ACCMODE != os.O_RDONLY and inode.fs.host_shared):
            # A write-open of a file host users reach is the gofer's: it drops set-id bits.
            root = self._view_root(dentry.mount)
            if root >= 0:
                try:
                    return open_beneath(root, _mount_relative(dentry), flags)
                except OSError:
                    pass  # the gofer's answer is the guest's (a race, O_NOATIME ...)
        client, mount = self.view
        path, _ = d_path(dentry, self.table.root.root)
        return client.open(mount, path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY)

    def _view_root(self, mount) -> int:
        """The descriptor of `mount`'s root in the guest's view, asked of the gofer once and
        checked to be the very directory the Sentry has there; -1 if it is not."""
        fd = self._view_roots.get(mount)
        if fd is None:
            fd = -1
            root = mount.root.inode
            if self.is_host_file(root):
                client, view = self.view
                path, _ = d_path(mount.root, self.table.root.root)
                try:
                    fd = client.open(view, path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                except OSError:
                    pass
                else:
                    st = os.fstat(fd)
                    if (st.st_dev, st.st_ino) != root.host_key:
                        os.close(fd)
                        fd = -1
            self._view_roots[mount] = fd
        return fd

    @staticmethod
    def is_host_file(inode) -> bool:
        """True for a file of a host file system (through the gofer), whose descriptors are
        the file itself and which the guest's view shows at the same place."""
        return isinstance(inode, GoferInode)

    def open_tmpfile(self, dir: Dentry, flags: int, mode: int) -> int:
        """An unnamed regular file in directory `dir` (open's O_TMPFILE), made by the gofer
        in the guest's own root."""
        if self.view is None or not isinstance(dir.inode, GoferInode):
            raise OSError(errno.EOPNOTSUPP, "no unnamed files here")
        client, mount = self.view
        path, _ = d_path(dir, self.table.root.root)
        fd = client.open(mount, path, flags | os.O_CLOEXEC | os.O_NOCTTY, mode)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink:
            os.close(fd)
            raise OSError(errno.EAGAIN, "the directory moved while being opened")
        return fd

    def controlling_terminal(self, task, flags: int) -> int:
        """/dev/tty: a new open of the task's own controlling terminal (the gofer, which has
        none, would get ENXIO), reopened from one of the task's descriptors of it; ENXIO
        when it has no terminal, or holds no descriptor of it."""
        fields = procfs.read(self.proc_fd, f"{task.tid}/stat").rsplit(b")", 1)[1].split()
        tty = int(fields[4])  # tty_nr, the 7th field of /proc/PID/stat
        if tty:
            for name in procfs.listdir(self.proc_fd, f"{task.tid}/fd"):
                link = f"{task.tid}/fd/{name}"
                try:
                    st = os.stat(link, dir_fd=self.proc_fd)
                    if stat.S_ISCHR(st.st_mode) and st.st_rdev == tty:
                        return os.open(link, flags | os.O_CLOEXEC | os.O_NOCTTY,
                                       dir_fd=self.proc_fd)
                except FileNotFoundError:
                    continue
        raise OSError(errno.ENXIO, "no controlling terminal")

    def _path_only(self, dentry: Dentry) -> int:
        """An O_PATH descriptor of a non-directory: an empty sealed memfd standing for it,
        known by its identity, so that fstat, the *at calls with AT_EMPTY_PATH and
        /proc/self/fd/N (glibc's fchmodat(AT_SYMLINK_NOFOLLOW)) act on the file itself.
        (NOTIF_ADDFD cannot install an O_PATH file.) fexecve of it fails."""
        memfd = os.memfd_create("o_path", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            fcntl.fcntl(memfd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW
                        | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL)
            # Write-only (and sealed): read is EBADF as on an O_PATH descriptor, write EPERM.
            fd = os.open(f"self/fd/{memfd}", os.O_WRONLY | os.O_CLOEXEC, dir_fd=self.proc_fd)
        finally:
            os.close(memfd)
        try:
            st = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        _put_bounded(self._path_only_keys, (st.st_dev, st.st_ino), dentry)
        self.remember((st.st_dev, st.st_ino), dentry)
        return fd

    def descriptor(self, task, fd: int) -> tuple[os.stat_result, Dentry | None, object]:
        """What guest descriptor `fd` is: its host stat, its dentry when it is a file of
        the Sentry's VFS (else None), and the synthetic inode when a synthetic file system
        (/proc) made it (else None). EBADF if the task has no such descriptor."""
        if fd < 0 or fd > 0x7FFFFFFF:
            raise OSError(errno.EBADF, "bad descriptor")
        host = task.getfd(fd)
        try:
            st = os.fstat(host)
        finally:
            os.close(host)
        key = (st.st_dev, st.st_ino)
        stand_in = self._path_only_keys.get(key)
        if stand_in is not None:
            return st, stand_in, stand_in.inode
        for fs in self.synthetic:
            inode = fs.by_host_key(*key)
            if inode is not None:
                return st, self.known(key), inode
        dentry = self.known(key)
        if dentry is None:
            try:
                link = os.readlink(f"{task.tid}/fd/{fd}", dir_fd=self.proc_fd)
            except FileNotFoundError:
                raise OSError(errno.EBADF, "bad descriptor") from None
            dentry = self.by_host_name(link, key)
            if dentry is not None:
                self.remember(key, dentry)
        return st, dentry, None

    def start(self, task, dirfd: int) -> Dentry | None:
        """Where a *at call's relative path starts: None for AT_FDCWD (the cwd), else the
        directory the descriptor is. ENOTDIR for any other descriptor, as Linux."""
        dirfd = int32(dirfd)
        if dirfd == -100:  # AT_FDCWD
            return None
        st, dentry, _ = self.descriptor(task, dirfd)
        if dentry is None and stat.S_ISDIR(st.st_mode):
            # A removed directory no longer remembered: nothing can be found in it.
            raise OSError(errno.ENOENT, "the directory is gone")
        if dentry is None:
            raise OSError(errno.ENOTDIR, "not a directory")
        return dentry


class CreatingOpen:
    """open(O_CREAT) of a name that does not exist, on a host file system: the file is made
    by the open whose descriptor the guest gets (O_CREAT|O_EXCL, by the gofer in the
    guest's view, where the descriptor must live), as Linux's own open makes it. The kernel
    then marks that description as the one that created the file (fcntl's
    F_CREATED_QUERY), and inotify sees one open, not the gofer's and then the guest's.
    Creating stays the gofer's, as every change to a host file (docs/architecture.md,
    directfs). Anywhere else, the directory's own create."""

    def __init__(self, fs: FileSystem, flags: int):
        self._fs = fs
        self._flags = flags
        self._fd: int | None = None

    def __call__(self, parent: Dentry, name: bytes, mode: int, uid: int, gid: int):
        fs, directory = self._fs, parent.inode
        if fs.view is None or not isinstance(directory, GoferDirectory):
            return directory.create(name, Kind.REG, mode, uid, gid)
        client, view = fs.view
        path, _ = d_path(parent, fs.table.root.root)
        path = path.rstrip(b"/") + b"/" + name
        flags = (self._flags | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                 | os.O_NOCTTY)

        def make_file(mode: int) -> None:
            self._fd = client.open(view, path, flags, mode)

        try:
            return directory.create(name, Kind.REG, mode, uid, gid, make_file=make_file)
        except BaseException:
            fd = self.take()
            if fd is not None:
                os.close(fd)
            raise

    def take(self) -> int | None:
        """The descriptor of the open that made the file, once; None if it made none."""
        fd, self._fd = self._fd, None
        return fd


def _put_bounded(cache: dict, key, value):
    """Insert as the newest entry of a dict used as an LRU of at most _CACHE_LIMIT; the key
    it evicted, if any."""
    cache.pop(key, None)
    cache[key] = value
    if len(cache) > _CACHE_LIMIT:
        oldest = next(iter(cache))
        del cache[oldest]
        return oldest
    return None


def _mount_relative(dentry: Dentry) -> bytes:
    """The path of `dentry` from the root of its mount ("." for the root itself)."""
    names = []
    while not dentry.is_root:
        names.append(dentry.name)
        dentry = dentry.parent
    return b"/".join(reversed(names)) or b"."


def int32(value: int) -> int:
    """A register as the kernel reads an int argument: its low 32 bits, signed."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value
