"""ctypes bindings for the host calls the gofer makes that Python's os module cannot express:
openat2's resolve flags, AT_EMPTY_PATH on O_PATH descriptors, renameat2's flags, raw
getdents64 (for the host's d_off cookies), and detached read-only mounts.

Every wrapper raises OSError with the kernel's errno; nothing here decides policy.
"""

import ctypes

from .. import abi
from ..platform.linux import syscall as _syscall

_int, _uint, _size, _str = ctypes.c_int, ctypes.c_uint, ctypes.c_size_t, ctypes.c_char_p



def openat2(dirfd: int, path: bytes, flags: int, mode: int, resolve: int) -> int:
    how = ctypes.create_string_buffer(abi.OPEN_HOW.pack(flags, mode, resolve), abi.OPEN_HOW.size)
    return _syscall("openat2", _int(dirfd), _str(path), how, _size(abi.OPEN_HOW.size))


def renameat2(olddirfd: int, old: bytes, newdirfd: int, new: bytes, flags: int) -> None:
    _syscall("renameat2", _int(olddirfd), _str(old), _int(newdirfd), _str(new), _uint(flags))


def fchmodat2(dirfd: int, path: bytes, mode: int, flags: int) -> None:
    _syscall("fchmodat2", _int(dirfd), _str(path), _uint(mode), _uint(flags))


def fchownat(dirfd: int, path: bytes, uid: int, gid: int, flags: int) -> None:
    # -1 ("leave unchanged") is passed as the u32 the kernel compares against.
    _syscall("fchownat", _int(dirfd), _str(path), _uint(uid & 0xFFFFFFFF), _uint(gid & 0xFFFFFFFF),
             _int(flags))


class _timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def utimensat(dirfd: int, path: bytes, atime: tuple[int, int], mtime: tuple[int, int], flags: int) -> None:
    times = (_timespec * 2)(_timespec(*atime), _timespec(*mtime))
    _syscall("utimensat", _int(dirfd), _str(path), times, _int(flags))


def fstatfs(fd: int) -> tuple:
    buf = ctypes.create_string_buffer(abi.STATFS.size)
    _syscall("fstatfs", _int(fd), buf)
    return abi.STATFS.unpack(buf.raw)


def getdents64(fd: int, buf: ctypes.Array, offset: int) -> int:
    """Fill buf[offset:] with linux_dirent64 records; returns the bytes written, 0 at the end."""
    return _syscall("getdents64", _int(fd), ctypes.byref(buf, offset), _uint(len(buf) - offset))


def open_tree(dirfd: int, path: bytes, flags: int) -> int:
    return _syscall("open_tree", _int(dirfd), _str(path), _uint(flags))


def mount_setattr(dirfd: int, path: bytes, flags: int, attr_set: int) -> None:
    attr = ctypes.create_string_buffer(abi.MOUNT_ATTR.pack(attr_set, 0, 0, 0), abi.MOUNT_ATTR.size)
    _syscall("mount_setattr", _int(dirfd), _str(path), _uint(flags), attr, _size(abi.MOUNT_ATTR.size))
