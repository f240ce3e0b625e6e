"""Host-level isolation of the guest: namespaces, its root file system, capabilities.

This is defence in depth under the Sentry: even a syscall that passes straight to the host
kernel finds itself in private mount, network, IPC and UTS namespaces, on a root that is the
rootfs (by default the host's / under an in-memory overlay, so the host is never written),
with a minimal /dev and without the capabilities that reach beyond the sandbox.

Everything here runs in the freshly forked guest before exec, as root in its namespaces.
"""

import errno
import fcntl
import os
import socket
import struct
import sys
from dataclasses import dataclass

from .. import abi
from .linux import mount, pivot_root, set_capabilities, umount2, unshare

# Docker's default capability set, less CAP_MKNOD and CAP_NET_RAW.
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

_NO_GROUP = 0x7FFFFFFE  # a gid nobody has
SCRATCH = "/tmp"  # where the new root is assembled, on a private tmpfs that shadows it


@dataclass(frozen=True)
class Volume:
    source: str  # a host directory
    target: str  # an absolute guest path
    read_only: bool = False


@dataclass(frozen=True)
class RootfsSpec:
    path: str = "/"
    overlay: bool = True  # False: the rootfs read-only, with no writable layer
    volumes: tuple[Volume, ...] = ()


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
    _loopback_up()


def _loopback_up() -> None:
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack_from("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


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
    or the rootfs read-only), fresh tmpfs instances for /tmp and /dev/shm, a minimal /dev,
    and the volumes. Mountpoints the guest needs are made in the overlay."""
    mount(None, "/", None, abi.MS_REC | abi.MS_PRIVATE)
    # Hold the sources by descriptor: the scratch tmpfs may shadow their paths (in /tmp).
    rootfs = os.open(spec.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    sources = [os.open(v.source, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) for v in spec.volumes]
    mount("tmpfs", SCRATCH, "tmpfs", abi.MS_NOSUID | abi.MS_NODEV, "mode=700")
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
        mount("tmpfs", host, "tmpfs", nodev, "mode=1777")
        mounts.append((guest, host, False))

    dev = f"{SCRATCH}/dev"
    _mkdirs(dev)
    mount("tmpfs", dev, "tmpfs", abi.MS_NOSUID, "mode=755")
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            _bind_file(f"/dev/{name}", f"{dev}/{name}")
    for d in ("pts", "shm"):
        _mkdirs(f"{dev}/{d}")
    mount("devpts", f"{dev}/pts", "devpts", abi.MS_NOSUID | abi.MS_NOEXEC,
          "newinstance,ptmxmode=0666,mode=620")
    for name, target in (("ptmx", "pts/ptmx"), ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")
    mounts.insert(2, ("/dev", dev, False))  # before /dev/shm, which sits on it

    # Device nodes open only in /dev: every other mount is nodev (and nosuid) at its source,
    # which the gofer's clones and the guest's view inherit.
    for number, (volume, fd) in enumerate(zip(spec.volumes, sources)):
        host = f"{SCRATCH}/volume{number}"
        _mkdirs(host)
        mount(f"/proc/self/fd/{fd}", host, None, abi.MS_BIND | abi.MS_REC)
        mount(None, host, None, abi.MS_REMOUNT | abi.MS_BIND | nodev
              | (abi.MS_RDONLY if volume.read_only else 0))
        os.close(fd)
        mounts.append((volume.target, host, volume.read_only))

    for guest, _, _ in mounts[1:]:
        where = root + guest
        if not os.path.isdir(where):
            if overlay:
                _mkdirs(where)
            elif guest in ("/tmp", "/dev", "/dev/shm"):
                continue  # checked again by the Sentry and the guest, which skip it too
            else:
                raise OSError(errno.ENOENT, f"no mountpoint {guest} in the read-only rootfs")
    _mkdirs_if(overlay, f"{root}/proc")
    return Storage(tuple(mounts), overlay)


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
        if guest != "/" and not os.path.isdir(target):
            continue
        mount(host, target, None, abi.MS_BIND | abi.MS_REC)
        flags = abi.MS_NOSUID if guest == "/dev" else nodev
        mount(None, target, None, abi.MS_REMOUNT | abi.MS_BIND | flags
              | (abi.MS_RDONLY if read_only else 0))

    proc = f"{view}/proc"
    if os.path.isdir(proc):
        # The kernel resolves paths in this view after the Sentry checked them (exec, chdir,
        # a fifo's open ...), and another guest thread can rewrite the path in between, so
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


def drop_privileges() -> None:
    set_capabilities(KEPT_CAPABILITIES)
