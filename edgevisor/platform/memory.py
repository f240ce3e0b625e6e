"""Guest memory through process_vm_readv/process_vm_writev.

These need no file system access (unlike /proc/PID/mem), so they keep working once the
Sentry is cut off from host files. A remote range that crosses into an unmapped page reads
short instead of failing, so reads are split at page edges and a short read is EFAULT.
"""

import ctypes
import errno
import os

from .linux import iovec, libc

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _fault() -> OSError:
    return OSError(errno.EFAULT, os.strerror(errno.EFAULT))


class ProcessMemory:
    """The address space of host task `tid`. `validate` (if given) runs after every read:
    on the seccomp platform it checks that the notification is still live, so a value read
    from a task that died and whose tid was reused is never acted upon."""

    __slots__ = ("tid", "validate")

    def __init__(self, tid: int, validate=None):
        self.tid = tid
        self.validate = validate

    def _readv(self, addr: int, n: int) -> bytes:
        buf = ctypes.create_string_buffer(n)
        local = iovec(ctypes.cast(buf, ctypes.c_void_p), n)
        remote = iovec(addr, n)
        got = libc.process_vm_readv(self.tid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
        if got < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return buf.raw[:got]

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
        if addr <= 0:
            raise _fault()
        out = bytearray()
        while len(out) < maxlen:
            chunk = min(PAGE_SIZE - (addr % PAGE_SIZE), maxlen - len(out))
            data = self._readv(addr, chunk)
            nul = data.find(b"\0")
            if nul >= 0:
                out += data[:nul]
                if self.validate is not None:
                    self.validate()
                return bytes(out)
            if len(data) != chunk:
                raise _fault()
            out += data
            addr += chunk
        raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))

    def write(self, addr: int, data: bytes) -> None:
        n = len(data)
        if n == 0:
            return
        if addr <= 0:
            raise _fault()
        if self.validate is not None:
            self.validate()
        buf = ctypes.create_string_buffer(bytes(data), n)
        local = iovec(ctypes.cast(buf, ctypes.c_void_p), n)
        remote = iovec(addr, n)
        got = libc.process_vm_writev(self.tid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
        if got < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        if got != n:
            raise _fault()
