"""Guest memory through process_vm_readv/process_vm_writev.

These need no file system access (unlike /proc/PID/mem), so they keep working once the
Sentry is cut off from host files. A remote range that crosses into an unmapped page reads
short instead of failing, so reads are split at page edges and a short read is EFAULT.
"""

import errno
import os

from ._notify import ffi, lib

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _fault() -> OSError:
    return OSError(errno.EFAULT, os.strerror(errno.EFAULT))


def _error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


class ProcessMemory:
    """The address space of host task `tid`. `validate` (if given) runs after every read:
    on the seccomp platform it checks that the notification is still live, so a value read
    from a task that died and whose tid was reused is never acted upon.

    The system calls are made in C (c/notify.c): through ctypes, each cost about as much
    again as the call itself, on every path a syscall names."""

    __slots__ = ("tid", "validate")

    def __init__(self, tid: int, validate=None):
        self.tid = tid
        self.validate = validate

    def _readv(self, addr: int, n: int) -> bytes:
        buf = ffi.new("char[]", n)
        got = lib.ev_read(self.tid, addr, buf, n)
        if got < 0:
            raise _error(-got)
        return ffi.buffer(buf, got)[:]

    def read(self, addr: int, n: int) -> bytes:
        if n == 0:
            return b""
        if addr <= 0 or addr + n > 1 << 64:
            raise _fault()
        data = self._readv(addr, n)
        if len(data) != n:
            raise _fault()
        if self.validate is not None:
            self.validate()
        return data

    def read_cstring(self, addr: int, maxlen: int) -> bytes:
        """A NUL-terminated string of at most maxlen bytes (without the NUL).
        ENAMETOOLONG if no NUL comes within maxlen, EFAULT if memory ends first."""
        if addr <= 0 or addr >= 1 << 64:
            raise _fault()
        buf = ffi.new("char[]", maxlen or 1)
        got = lib.ev_read_cstring(self.tid, addr, buf, maxlen, PAGE_SIZE)
        if got < 0:
            raise _error(-got)
        if self.validate is not None:
            self.validate()
        return ffi.buffer(buf, got)[:]

    def write(self, addr: int, data: bytes) -> None:
        n = len(data)
        if n == 0:
            return
        if addr <= 0 or addr + n > 1 << 64:
            raise _fault()
        if self.validate is not None:
            self.validate()
        got = lib.ev_write(self.tid, addr, bytes(data), n)
        if got < 0:
            raise _error(-got)
        if got != n:
            raise _fault()
