"""Thin ctypes bindings for the host system calls the platforms need.

Every wrapper raises OSError with the kernel's errno; nothing here decides policy.
"""

import _socket  # not socket: the OCI runtime's holder needs loopback_up before anything else
import contextlib
import errno
import ctypes
import fcntl
import os
import struct

from .. import abi

libc = ctypes.CDLL(None, use_errno=True)
_NR: dict[str, int] = {}  # for the syscalls glibc has no wrapper for, or that we call raw on purpose

libc.syscall.restype = ctypes.c_long
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.unshare.argtypes = [ctypes.c_int]


class iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


libc.process_vm_readv.restype = ctypes.c_ssize_t
libc.process_vm_readv.argtypes = [
    ctypes.c_int, ctypes.POINTER(iovec), ctypes.c_ulong, ctypes.POINTER(iovec), ctypes.c_ulong, ctypes.c_ulong]
libc.process_vm_writev.restype = ctypes.c_ssize_t
libc.process_vm_writev.argtypes = libc.process_vm_readv.argtypes


def _check(ret: int, filename: str | None = None) -> int:
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), filename)
    return ret


def syscall(name: str, *args) -> int:
    """A raw syscall by name, its number from the generated table of the host's arch."""
    if not _NR:  # on first use: the OCI runtime's holder joins namespaces before the tables
        from ..syscall_tables import numbers

        _NR.update(numbers())
    return _check(libc.syscall(ctypes.c_long(_NR[name]), *args))


def prctl(option: int, a2: int = 0, a3: int = 0, a4: int = 0, a5: int = 0) -> int:
    return _check(libc.prctl(option, a2, a3, a4, a5))


def unshare(flags: int) -> None:
    _check(libc.unshare(flags))


def setns(fd: int, nstype: int) -> None:
    _check(libc.setns(fd, nstype))


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(libc.mount(enc(source), target.encode(), enc(fstype), flags, enc(data)),
           f"mount {fstype or source} on {target}")


def umount2(target: str, flags: int) -> None:
    _check(libc.umount2(target.encode(), flags), target)


def pivot_root(new_root: str, put_old: str) -> None:
    try:
        syscall("pivot_root", new_root.encode(), put_old.encode())
    except OSError as e:
        raise OSError(e.errno, e.strerror, "pivot_root") from None


def seccomp_load(program: bytes, flags: int) -> int:
    """Load a classic-BPF seccomp program; returns the listener fd if one was asked for."""

    class sock_fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

    prog = sock_fprog(len(program) // abi.SOCK_FILTER.size, program)
    return syscall("seccomp", abi.SECCOMP_SET_MODE_FILTER, flags, ctypes.byref(prog))


def seccomp_action_available(action: int) -> bool:
    try:
        syscall("seccomp", abi.SECCOMP_GET_ACTION_AVAIL, 0, ctypes.byref(ctypes.c_uint32(action)))
    except OSError:
        return False
    return True


def pidfd_getfd(pidfd: int, fd: int) -> int:
    return syscall("pidfd_getfd", pidfd, fd, 0)


def ptrace(request: int, pid: int, addr: int = 0, data: int | ctypes.c_void_p = 0) -> int:
    ctypes.set_errno(0)
    ret = libc.ptrace(request, pid, addr, data)
    if ret == -1 and ctypes.get_errno():
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def set_capabilities(keep: frozenset[int]) -> None:
    """Drop every capability not in `keep` from the bounding, ambient and current sets."""

    class cap_header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class cap_data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    for cap in range(abi.CAP_LAST_CAP + 1):
        if cap not in keep:
            try:
                prctl(abi.PR_CAPBSET_DROP, cap)
            except OSError as e:  # EINVAL: this kernel does not know the capability
                if e.errno != 22:
                    raise
    prctl(abi.PR_CAP_AMBIENT, abi.PR_CAP_AMBIENT_CLEAR_ALL)
    header = cap_header(abi.LINUX_CAPABILITY_VERSION_3, 0)
    data = (cap_data * 2)()
    _check(libc.capget(ctypes.byref(header), data))
    for word in range(2):
        mask = sum(1 << (c - 32 * word) for c in keep if 32 * word <= c < 32 * (word + 1))
        data[word].effective &= mask
        data[word].permitted &= mask
        data[word].inheritable &= mask
    _check(libc.capset(ctypes.byref(header), data))


def kcmp(pid1: int, pid2: int, kind: int, idx1: int = 0, idx2: int = 0) -> int:
    """0 if the two processes share the resource (abi.KCMP_*), 1 or 2 (an ordering) if not."""
    return syscall("kcmp", pid1, pid2, kind, idx1, idx2)


@contextlib.contextmanager
def file_system_ids(uid: int, gid: int):
    """Run the block with this thread's fsuid and fsgid set to these (what the kernel records
    as the owner of what the thread creates), then restore them. setfsuid(2) and setfsgid(2)
    are per thread and report no errors: the ids are read back to tell."""
    old_uid, old_gid = libc.setfsuid(uid), libc.setfsgid(gid)
    try:
        if libc.setfsuid(-1) != uid or libc.setfsgid(-1) != gid:
            raise OSError(errno.EPERM, f"cannot act as uid {uid} gid {gid}")
        yield
    finally:
        libc.setfsgid(old_gid)
        libc.setfsuid(old_uid)


def tkill(tid: int, sig: int) -> None:
    syscall("tkill", tid, sig)


def wait_any() -> tuple[int, int] | None:
    """waitpid(-1, __WALL), but None when a signal interrupts it (os.waitpid retries)."""
    status = ctypes.c_int()
    tid = libc.waitpid(-1, ctypes.byref(status), abi.WALL)
    if tid < 0:
        err = ctypes.get_errno()
        if err == errno.EINTR:
            return None
        raise OSError(err, os.strerror(err))
    return tid, status.value


libc.openat.restype = ctypes.c_int
libc.openat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]


def open_interruptible(dir_fd: int, path: str, flags: int) -> int:
    """openat(2) that fails with EINTR when a signal comes to the calling thread, where
    os.open would retry (PEP 475): how a thread waiting in a fifo's open is let go."""
    fd = libc.openat(dir_fd, os.fsencode(path), flags, 0)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return fd


def loopback_up() -> None:
    """`ip link set lo up` in this task's network namespace (a new one has lo down)."""
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        ifreq = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack_from("16sH", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))
    finally:
        s.close()
