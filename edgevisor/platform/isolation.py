"""Host-level isolation of the guest: namespaces, its root file system, capabilities.

This is defence in depth under the Sentry: even a syscall that passes straight to the host
kernel finds itself in private mount, network, IPC and UTS namespaces, on a root that is the
rootfs (by default the host's / under an in-memory overlay, so the host is never written),
with a minimal /dev and without the capabilities that reach beyond the sandbox.

Everything here runs in the freshly forked guest before exec, as root in its namespaces.
"""

import errno
import os
import socket
import stat
import sys
from dataclasses import dataclass

from .. import abi
from .linux import loopback_up, mount, pivot_root, set_capabilities, umount2, unshare

# Docker's default capability set, less CAP_MKNOD and CAP_NET_RAW.
# --cap-add gives back only these: every capability beyond them reaches a host object even
# from the guest's namespaces. CAP_NET_ADMIN, the likeliest ask, acts on the guest's own
# network namespace, but rtnetlink then loads any rtnl-link-* kernel module on the host
# (`ip link add x type KIND`) and opens the traffic-control code; the others reach the
# host's clock (SYS_TIME), kernel (SYS_MODULE, SYS_ADMIN, BPF, PERFMON, SYSLOG), devices
# (MKNOD: a node made on a volume opens for host users), file flags on volumes
# (LINUX_IMMUTABLE), inodes by handle (DAC_READ_SEARCH: open_by_handle_at), or its
# scheduler, memory and limits (SYS_NICE, IPC_LOCK, SYS_RESOURCE).
KEPT_CAPABILITIES = frozenset({
    0,   # CHOWN
    1,   # DAC_OVERRIDE
    3,   # FOWNER
    4,   # FSETID
    5,   # KILL
    6,   # SETGID
    7,   # SETUID
    8,   # SETPCAP
    10,  # NET_BIND_SERVICE
    18,  # SYS_CHROOT
    29,  # AUDIT_WRITE
    31,  # SETFCAP
})

DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEVICE_MODE = 0o666  # runc's default spec, root:root, for every device above

_NO_GROUP = 0x7FFFFFFE  # a gid nobody has
SCRATCH = "/tmp"  # where the new root is assembled, on a private tmpfs that shadows it
# The storage mounts whose files live in that private tmpfs (the rootfs, through the
# overlay's upper layer, or read-only; /tmp; /dev/shm), which no host user reaches. Every
# other one is shared with the host (a volume; /dev, which holds host device nodes): no
# set-id bits there (gofer/fs.py).
_PRIVATE = (f"{SCRATCH}/root", f"{SCRATCH}/tmp", f"{SCRATCH}/shm")
# The sandbox's own in-memory directories (/tmp, /dev/shm, /dev) in that tmpfs.
_IN_MEMORY = (f"{SCRATCH}/tmp", f"{SCRATCH}/shm", f"{SCRATCH}/dev")
_TMPFS = f"{SCRATCH}/tmpfs"  # the host side of --tmpfs mount N is _TMPFS + "N"
# The host side of a single-file volume: a directory of the scratch holding only the host
# file, bound at FILE_VOLUME_ENTRY (the gofer's mount roots are directories); the guest's
# mount shows that entry.
_FILE_VOLUME = f"{SCRATCH}/file-volume"
FILE_VOLUME_ENTRY = "file"


def shared_with_host(host: str) -> bool:
    """True for a storage mount (by its host path) whose files host users can reach."""
    return host not in _PRIVATE and not is_tmpfs(host)


def is_tmpfs(host: str) -> bool:
    """True for the host side of a --tmpfs mount."""
    return host.startswith(_TMPFS)


def is_file_volume(host: str) -> bool:
    """True for the host side of a single-file volume (its file is FILE_VOLUME_ENTRY)."""
    return host.startswith(_FILE_VOLUME)


@dataclass(frozen=True)
class Volume:
    source: str  # a host directory, or a host regular file bound on a file
    target: str  # an absolute guest path
    read_only: bool = False

    @classmethod
    def parse(cls, spec: str) -> "Volume":
        """HOST:GUEST or HOST:GUEST:ro (or :rw), as docker run -v; ValueError if not."""
        parts = spec.split(":")
        read_only = False
        if len(parts) == 3 and parts[2] in ("ro", "rw"):
            read_only = parts.pop() == "ro"
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise ValueError("expected HOST:GUEST[:ro]")
        return cls(os.path.abspath(parts[0]), os.path.normpath(parts[1]), read_only)


@dataclass(frozen=True)
class Tmpfs:
    """`--tmpfs PATH[:size=N,mode=M]`: an in-memory mount of the sandbox's own at PATH."""

    target: str  # an absolute guest path
    size: int | None = None  # bytes, in pages; None: it shares the scratch with /tmp
    mode: int = 0o1777  # Docker's default


@dataclass(frozen=True)
class RootfsSpec:
    path: str
    overlay: bool  # False: the rootfs read-only, with no writable layer
    volumes: tuple[Volume, ...]
    scratch_size: int  # bytes, in pages: the one bound of every in-memory file system
    # Single files an OCI spec binds (resolv.conf, hosts, hostname, docker-init): (guest
    # path, content, read-only, permission bits). The guest gets a private copy in the
    # scratch tmpfs, never the host's inode, whose modes and owner it could otherwise change.
    files: tuple[tuple[str, bytes, bool, int], ...] = ()
    tmpfs: tuple[Tmpfs, ...] = ()


@dataclass(frozen=True)
class Storage:
    """The host directories behind the guest's mounts, assembled by the Sentry in its own
    mount namespace: what the gofer serves and what the guest's host view shows, in the
    order of their gofer mount numbers. `mounts[i]` is (guest path, host path, read-only)."""

    mounts: tuple[tuple[str, str, bool], ...]
    overlay: bool  # False when the rootfs is read-only (asked for, or no overlay possible)


def enter_namespaces(hostname: str) -> None:
    unshare(abi.CLONE_NEWNS | abi.CLONE_NEWNET | abi.CLONE_NEWIPC | abi.CLONE_NEWUTS)
    socket.sethostname(hostname)
    loopback_up()


def _mkdirs(path: str, mode: int = 0o755) -> None:
    os.makedirs(path, mode=mode, exist_ok=True)


def _bind_file(source: str, target: str, flags: int = 0) -> None:
    if not os.path.exists(target):
        with open(target, "wb"):
            pass
    mount(source, target, None, abi.MS_BIND)
    if flags:
        mount(None, target, None, abi.MS_REMOUNT | abi.MS_BIND | flags)


def build_storage(spec: RootfsSpec) -> Storage:
    """Assemble, under a private tmpfs at SCRATCH, the host side of every guest mount: the
    rootfs (an overlay whose upper layer lives in that tmpfs, so the host is never written,
    or the rootfs read-only), /tmp, /dev/shm and a minimal /dev as directories of the same
    tmpfs, and the volumes. Mountpoints the guest needs are made in the overlay.

    One tmpfs holds every in-memory file system of the sandbox so that they share one bound,
    `spec.scratch_size`: past it a write gets ENOSPC wherever it lands, and statfs of any of
    them reports that bound and what all of them use together."""
    mount(None, "/", None, abi.MS_REC | abi.MS_PRIVATE)
    # Hold the sources by descriptor: the scratch tmpfs may shadow their paths (in /tmp).
    rootfs = os.open(spec.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    # Outer targets first, so that one at /a/b is mounted on /a's, not shadowed by it.
    others = sorted((*spec.volumes, *spec.tmpfs), key=lambda m: m.target.count("/"))
    sources = [os.open(m.source, os.O_PATH | os.O_CLOEXEC) if isinstance(m, Volume) else None
               for m in others]
    # A sized --tmpfs is a tmpfs of its own, whose size the scratch gives up: together they
    # still hold no more than the one bound.
    scratch = spec.scratch_size - sum(t.size for t in spec.tmpfs if t.size)
    mount("tmpfs", SCRATCH, "tmpfs", abi.MS_NOSUID | abi.MS_NODEV, _tmpfs_options(scratch, 0o700))
    root = f"{SCRATCH}/root"
    _mkdirs(root)
    overlay = spec.overlay and _mount_overlay(f"/proc/self/fd/{rootfs}", root, spec.path)
    if not overlay:
        # Recursive: a user namespace may not bind a tree without the mounts locked on it.
        mount(f"/proc/self/fd/{rootfs}", root, None, abi.MS_BIND | abi.MS_REC)
        mount(None, root, None, abi.MS_REMOUNT | abi.MS_BIND | abi.MS_RDONLY | abi.MS_NOSUID
              | abi.MS_NODEV)
    os.close(rootfs)

    mounts = [("/", root, not overlay)]
    nodev = abi.MS_NOSUID | abi.MS_NODEV
    for name, guest in (("tmp", "/tmp"), ("shm", "/dev/shm")):
        host = f"{SCRATCH}/{name}"
        _mkdirs(host)
        os.chmod(host, 0o1777)
        mounts.append((guest, host, False))
    mounts.insert(2, ("/dev", _build_dev(), False))  # before /dev/shm, which sits on it

    # Device nodes open only in /dev: every other mount is nodev (and nosuid) at its source,
    # which the gofer's clones and the guest's view inherit.
    for number, (other, fd) in enumerate(zip(others, sources)):
        if isinstance(other, Tmpfs):
            host = f"{_TMPFS}{number}"
            _mkdirs(host)
            if other.size:
                mount("tmpfs", host, "tmpfs", nodev, _tmpfs_options(other.size, other.mode))
            else:  # a directory of the scratch, as /tmp is
                os.chmod(host, other.mode)
            mounts.append((other.target, host, False))
            continue
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            host = bound = f"{SCRATCH}/volume{number}"
            _mkdirs(host)
        else:
            host = f"{_FILE_VOLUME}{number}"
            bound = f"{host}/{FILE_VOLUME_ENTRY}"
            _mkdirs(host)
            os.close(os.open(bound, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        mount(f"/proc/self/fd/{fd}", bound, None, abi.MS_BIND | abi.MS_REC)
        mount(None, bound, None, abi.MS_REMOUNT | abi.MS_BIND | nodev
              | (abi.MS_RDONLY if other.read_only else 0))
        os.close(fd)
        mounts.append((other.target, host, other.read_only))

    for index, (guest, _, _) in enumerate(mounts[1:], start=1):
        # The mountpoint lives in the mount that holds it: a volume at /tmp/x needs its
        # directory in the sandbox's /tmp, not under the /tmp it shadows in the rootfs.
        parent, parent_host, _ = _holder(guest, mounts[:index])
        where = parent_host + guest[len(parent.rstrip("/")):]
        writable = parent == "/" and overlay or parent_host in _IN_MEMORY or is_tmpfs(parent_host)
        if is_file_volume(mounts[index][1]):
            os.close(_file_mountpoint(parent_host, guest[len(parent.rstrip("/")):], writable,
                                      in_root=False))
        elif not os.path.isdir(where):
            if os.path.lexists(where):
                raise OSError(errno.ENOTDIR, f"mountpoint {guest} is not a directory")
            if writable:
                _mkdirs(where)  # in the overlay's upper layer, or in the scratch tmpfs
            elif guest in ("/tmp", "/dev", "/dev/shm"):
                continue  # checked again by the Sentry and the guest, which skip it too
            else:
                # Never made on the host: a read-only rootfs, or a volume (which is the
                # host's own directory) without that directory, is the caller's to fix.
                raise OSError(errno.ENOENT, f"no mountpoint {guest} in the "
                              f"{'read-only rootfs' if parent == '/' else 'volume at ' + parent}")
    _mkdirs_if(overlay, f"{root}/proc")
    for number, (guest, content, read_only, mode) in enumerate(spec.files):
        host = f"{SCRATCH}/file{number}"
        with open(host, "wb") as f:
            f.write(content)
        os.chmod(host, mode & 0o777)  # never set-id: the copy is root's
        # Bound through the descriptor, then remounted through a new one: the first names
        # the file beneath the mount, the second the mount itself.
        for flags in (abi.MS_BIND, abi.MS_REMOUNT | abi.MS_BIND | nodev
                      | (abi.MS_RDONLY if read_only else 0)):
            target = _file_mountpoint(root, guest, overlay)
            try:
                mount(None if flags & abi.MS_REMOUNT else host, f"/proc/self/fd/{target}",
                      None, flags)
            finally:
                os.close(target)
    return Storage(tuple(mounts), overlay)


def _tmpfs_options(size: int, mode: int) -> str:
    # tmpfs's own default is one inode per page of its size; without nr_inodes the inode
    # limit would stay at half the host's RAM in pages, whatever the size.
    return f"mode={mode:o},size={size},nr_inodes={size // os.sysconf('SC_PAGE_SIZE')}"


def _holder(guest: str, mounts) -> tuple[str, str, bool]:
    """The mount, of those made before it, on which the guest path `guest` sits."""
    # The last of equal length: a volume at /tmp hides the sandbox's own /tmp.
    return max((m for m in reversed(mounts) if m[0] == "/" or guest.startswith(m[0] + "/")),
               key=lambda m: len(m[0]))


def _directories_beneath(root_fd: int, path: bytes, resolve: int) -> int:
    """An O_PATH descriptor of the directory `path` beneath `root_fd`, each missing one on
    the way made (0755), as runc makes a mountpoint's (docker-init's /sbin) and Docker a
    volume's target: one name at a time, each resolved from `root_fd` with `resolve` as the
    guest would, so no symlink leads a mkdir out of the root (mkdirat does not follow its
    last name)."""
    from ..gofer.hostcalls import openat2

    flags = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
    fd, walked = os.dup(root_fd), b""
    for name in filter(None, path.split(b"/")):
        try:
            os.mkdir(name, 0o755, dir_fd=fd)
        except FileExistsError:
            pass
        finally:
            os.close(fd)
        walked += b"/" + name
        fd = openat2(root_fd, walked.lstrip(b"/"), flags, 0, resolve)
    return fd


def _file_mountpoint(root: str, guest: str, writable: bool, *, in_root: bool = True) -> int:
    """An O_PATH descriptor of the file at `guest` beneath the mount `root`, made (empty) in
    a writable one if missing. `in_root`: resolved as the guest would, beneath `root`: an
    image whose /etc/resolv.conf is a symlink to an absolute path must not get a host file
    made or covered (runc's securejoin). Otherwise no symlink may be on the way at all, for
    a mountpoint the guest's view binds by that very path (a file volume)."""
    from ..gofer.hostcalls import openat2

    resolve = (abi.RESOLVE_IN_ROOT | abi.RESOLVE_NO_MAGICLINKS if in_root
               else abi.RESOLVE_BENEATH | abi.RESOLVE_NO_SYMLINKS)
    nofollow = 0 if in_root else os.O_NOFOLLOW
    path = guest.lstrip("/").encode()
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fd = openat2(root_fd, path, os.O_PATH | nofollow | os.O_CLOEXEC, 0, resolve)
        except FileNotFoundError:
            if not writable:
                raise OSError(errno.ENOENT, f"no mountpoint {guest} in a read-only rootfs "
                              "or a volume") from None
            parent = _directories_beneath(root_fd, os.path.dirname(path), resolve)
            try:  # O_EXCL: never through a dangling symlink
                os.close(os.open(os.path.basename(path), os.O_CREAT | os.O_EXCL | os.O_WRONLY
                                 | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=parent))
            finally:
                os.close(parent)
            fd = openat2(root_fd, path, os.O_PATH | nofollow | os.O_CLOEXEC, 0, resolve)
    except OSError as e:
        if e.errno != errno.ELOOP or in_root:
            raise
        raise OSError(errno.ELOOP, f"mountpoint {guest} passes a symlink") from None
    finally:
        os.close(root_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"mountpoint {guest} is not a regular file")
    return fd


def _build_dev() -> str:
    """A minimal /dev in the scratch tmpfs: the sandbox's own device nodes, a new devpts
    instance and the usual symlinks. Its own bind mount, so that it alone is not nodev."""
    dev = f"{SCRATCH}/dev"
    _mkdirs(dev)
    os.chmod(dev, 0o755)
    mount(dev, dev, None, abi.MS_BIND)
    mount(None, dev, None, abi.MS_REMOUNT | abi.MS_BIND | abi.MS_NOSUID)
    for name in DEVICES:
        _make_device(name, f"{dev}/{name}")
    for d in ("pts", "shm"):
        _mkdirs(f"{dev}/{d}")
    mount("devpts", f"{dev}/pts", "devpts", abi.MS_NOSUID | abi.MS_NOEXEC,
          "newinstance,ptmxmode=0666,mode=620")
    for name, target in (("ptmx", "pts/ptmx"), ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")
    return dev


def _make_device(name: str, target: str) -> None:
    """The guest's /dev/NAME: a node of the sandbox's own with the host's device number, so
    that chown, chmod, utimes, xattrs, unlink and rename in the guest's /dev change only the
    sandbox. Without CAP_MKNOD (a user namespace, where nodes made would not open anyway) the
    host's node is bound read-only instead: reads and writes work (a device's data is not
    the mount's), every metadata change is EROFS, and unlink or rename reach only the
    sandbox's mountpoint file."""
    try:
        host = os.stat(f"/dev/{name}")
    except FileNotFoundError:
        return
    if not stat.S_ISCHR(host.st_mode):
        return
    try:
        os.mknod(target, stat.S_IFCHR | DEVICE_MODE, host.st_rdev)
        os.chmod(target, DEVICE_MODE)  # past the umask
    except PermissionError:
        # A user namespace may not clear the noexec or nodev the host's /dev has: keep them.
        locked = os.statvfs(f"/dev/{name}").f_flag
        _bind_file(f"/dev/{name}", target, abi.MS_RDONLY | abi.MS_NOSUID
                   | (abi.MS_NOEXEC if locked & os.ST_NOEXEC else 0)
                   | (abi.MS_NODEV if locked & os.ST_NODEV else 0))


def _mkdirs_if(allowed: bool, path: str) -> None:
    if allowed and not os.path.isdir(path):
        _mkdirs(path)


def _mount_overlay(lower: str, root: str, what: str) -> bool:
    for d in ("upper", "work"):
        _mkdirs(f"{SCRATCH}/{d}")
    options = f"lowerdir={lower},upperdir={SCRATCH}/upper,workdir={SCRATCH}/work"
    if os.geteuid() != 0:
        # In a user namespace overlayfs cannot use trusted.* xattrs for its whiteouts.
        options += ",userxattr"
    try:
        mount("overlay", root, "overlay", abi.MS_NOSUID | abi.MS_NODEV, options)
        return True
    except OSError as e:
        # Unprivileged, overlayfs refuses a lower layer with mounts beneath it (the host's
        # /), since those are locked in our user namespace. Read-only is the safe fallback.
        if e.errno != errno.EINVAL or os.geteuid() == 0:
            raise
        print(f"edgevisor: warning: no overlay over {what} without root; "
              "the rootfs is read-only", file=sys.stderr)
        return False


def enter_view(storage: Storage) -> None:
    """Make the guest's root a mirror of the Sentry's mount tree: the same host objects at
    the same places, read-only where the guest's mount is. The kernel uses it only where it
    resolves a path itself (exec, the ELF interpreter, #!, chdir after the Sentry allowed
    it); every path the guest names in a syscall is resolved by the Sentry."""
    view = f"{SCRATCH}/view"
    _mkdirs(view)
    nodev = abi.MS_NOSUID | abi.MS_NODEV
    for guest, host, read_only in storage.mounts:
        target = view + guest
        if is_file_volume(host):
            host = f"{host}/{FILE_VOLUME_ENTRY}"  # on the file build_storage made or checked
        elif guest != "/" and not os.path.isdir(target):
            continue
        mount(host, target, None, abi.MS_BIND | abi.MS_REC)
        flags = abi.MS_NOSUID if guest == "/dev" else nodev
        mount(None, target, None, abi.MS_REMOUNT | abi.MS_BIND | flags
              | (abi.MS_RDONLY if read_only else 0))

    proc = f"{view}/proc"
    if os.path.isdir(proc):
        # The kernel resolves paths in this view after the Sentry checked them (exec, chdir,
        # inotify ...), and another guest thread can rewrite the path in between, so
        # the view must hold nothing the Sentry hides. subset=pid: only the task directories,
        # self and thread-self, no /proc/sys, /proc/slabinfo, /proc/kcore ... (the Sentry's
        # own figures, meminfo and the like, come from its procfs). hidepid=invisible: no
        # more tasks than the Sentry's /proc shows, which hides the Sentry and the gofer.
        # Its exempt group must be one the guest is not in: the default is 0.
        options = "subset=pid,hidepid=invisible"
        try:
            mount("proc", proc, "proc", nodev | abi.MS_NOEXEC, f"{options},gid={_NO_GROUP}")
        except OSError:  # a user namespace without that gid mapped
            mount("proc", proc, "proc", nodev | abi.MS_NOEXEC, options)
    _pivot(view)


def leave_host_root() -> None:
    """The Sentry's last step before serving: its root becomes an empty read-only tmpfs,
    and the old root, with every host mount, is detached from its namespace (the gofer,
    which shares it, keeps only the mount roots it holds open)."""
    empty = f"{SCRATCH}/empty"
    _mkdirs(empty)
    mount("tmpfs", empty, "tmpfs", abi.MS_NOSUID | abi.MS_NODEV | abi.MS_NOEXEC, "mode=555")
    mount(None, empty, None, abi.MS_REMOUNT | abi.MS_RDONLY | abi.MS_NOSUID | abi.MS_NODEV
          | abi.MS_NOEXEC, "mode=555")
    _pivot(empty)


def _pivot(root: str) -> None:
    # pivot_root(".", "."): the old root ends up stacked on the new one and is detached.
    os.chdir(root)
    pivot_root(".", ".")
    umount2(".", abi.MNT_DETACH)
    os.chdir("/")


def drop_privileges(capabilities: frozenset[int] = KEPT_CAPABILITIES) -> None:
    set_capabilities(capabilities)


def become(identity: tuple[int, int, tuple[int, ...]] | None,
           capabilities: frozenset[int] | None, allowed: frozenset[int]) -> None:
    """The user a command runs as, as runc sets it: groups, then gid, then uid (which clears
    the capabilities); then, still root, the OCI process's capabilities within `allowed`
    (once CAP_SET[UG]ID have served: another uid has none left)."""
    if identity is not None:
        uid, gid, groups = identity
        os.setgroups(list(groups))
        os.setgid(gid)
        os.setuid(uid)
    if capabilities is not None and os.geteuid() == 0:
        drop_privileges(capabilities & allowed)
