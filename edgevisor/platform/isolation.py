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
# Like runc's masked and read-only paths: host knobs that a guest root must not turn.
PROC_MASKED = ("kcore", "keys", "sysrq-trigger", "timer_list", "latency_stats", "sched_debug",
               "kallsyms", "kmsg")
PROC_READONLY = ("sys", "irq", "bus", "fs", "asound")

SCRATCH = "/tmp"  # where the new root is assembled, on a private tmpfs that shadows it


@dataclass(frozen=True)
class RootfsSpec:
    path: str = "/"
    overlay: bool = True  # False: the rootfs read-only, with no writable layer


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


def _readonly_bind(path: str) -> None:
    mount(path, path, None, abi.MS_BIND | abi.MS_REC)
    mount(None, path, None, abi.MS_REMOUNT | abi.MS_BIND | abi.MS_RDONLY | abi.MS_NOSUID | abi.MS_NODEV)


def build_root(spec: RootfsSpec) -> None:
    """Assemble the guest's root and make it the root of this mount namespace."""
    mount(None, "/", None, abi.MS_REC | abi.MS_PRIVATE)
    # Hold the rootfs by descriptor: the scratch tmpfs may shadow its path (a rootfs in /tmp).
    rootfs = os.open(spec.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    lower = f"/proc/self/fd/{rootfs}"
    mount("tmpfs", SCRATCH, "tmpfs", abi.MS_NOSUID | abi.MS_NODEV, "mode=700")
    root = f"{SCRATCH}/root"
    _mkdirs(root)
    if spec.overlay:
        for d in ("upper", "work"):
            _mkdirs(f"{SCRATCH}/{d}")
        options = f"lowerdir={lower},upperdir={SCRATCH}/upper,workdir={SCRATCH}/work"
        if os.geteuid() != 0:
            # In a user namespace overlayfs cannot use trusted.* xattrs for its whiteouts.
            options += ",userxattr"
        try:
            mount("overlay", root, "overlay", 0, options)
        except OSError as e:
            # Unprivileged, overlayfs refuses a lower layer with mounts beneath it (the host's
            # /), since those are locked in our user namespace. Read-only is the safe fallback.
            if e.errno != errno.EINVAL or os.geteuid() == 0:
                raise
            print(f"edgevisor: warning: no overlay over {spec.path} without root; "
                  "the rootfs is read-only", file=sys.stderr)
            spec = RootfsSpec(spec.path, overlay=False)
    if not spec.overlay:
        mount(lower, root, None, abi.MS_BIND | abi.MS_REC)
        mount(None, root, None, abi.MS_REMOUNT | abi.MS_BIND | abi.MS_RDONLY)
    os.close(rootfs)

    nodev = abi.MS_NOSUID | abi.MS_NODEV
    for d, fstype, flags, data in (
        ("tmp", "tmpfs", nodev, "mode=1777"),
        ("dev", "tmpfs", abi.MS_NOSUID, "mode=755"),
        ("proc", "proc", nodev | abi.MS_NOEXEC, None),
        ("sys", "sysfs", nodev | abi.MS_NOEXEC | abi.MS_RDONLY, None),
    ):
        target = f"{root}/{d}"
        if not os.path.isdir(target):
            if spec.overlay:
                _mkdirs(target)
            else:
                continue  # a read-only rootfs without this directory goes without it
        mount(fstype, target, fstype, flags, data)

    dev = f"{root}/dev"
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            _bind_file(f"/dev/{name}", f"{dev}/{name}")
    for d in ("pts", "shm"):
        _mkdirs(f"{dev}/{d}")
    mount("devpts", f"{dev}/pts", "devpts", abi.MS_NOSUID | abi.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620")
    mount("tmpfs", f"{dev}/shm", "tmpfs", nodev, "mode=1777")
    for name, target in (("ptmx", "pts/ptmx"), ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")

    proc = f"{root}/proc"
    if os.path.isdir(proc):
        for name in PROC_MASKED:
            if os.path.exists(f"{proc}/{name}"):
                _bind_file("/dev/null", f"{proc}/{name}", abi.MS_RDONLY)
        for name in PROC_READONLY:
            if os.path.isdir(f"{proc}/{name}"):
                _readonly_bind(f"{proc}/{name}")

    # pivot_root(".", "."): the old root ends up stacked on the new one and is detached.
    os.chdir(root)
    pivot_root(".", ".")
    umount2(".", abi.MNT_DETACH)
    os.chdir("/")


def drop_privileges() -> None:
    set_capabilities(KEPT_CAPABILITIES)
