"""``--strace``: one line per syscall the Sentry sees, in strace's own format.

Sans-IO: :class:`Strace` decodes arguments and formats the line; the caller's
``write`` callable owns the stream. Output follows ``strace -f`` with its
defaults (``-s 32``, octal escapes, abbreviated ``envp``), so a trace can be
read with strace habits and diffed against a real strace run::

    s = Strace(sys.stderr.write)
    pending = s.enter(vtid, "openat", row.args, raw_args, task.mem)
    ...                                    # the handler or the kernel runs it
    s.exit(pending, result, "emulate")     # -> one line, newline included

Pointers are 8 bytes; open flags come from abi (the host's, which is the guest's
architecture) and are x86_64's where abi has none.
"""

from __future__ import annotations

import errno
import os
import signal
import struct
from dataclasses import dataclass
from typing import Any, Callable

from .. import abi
from ..abi import AT_FDCWD, PATH_MAX

__all__ = ["Pending", "Strace", "format_result", "quote", "unknown_syscall_name"]

MAX_STRLEN = 32  # strace's default -s: string bytes and argv elements shown
_MASK64 = (1 << 64) - 1
_PAGE = 4096
_POINTER_CHUNK = 512  # bytes of a pointer array fetched per read (64 pointers)

# open(2) flags (x86_64 values where abi has none), in the order of strace's
# xlat/open_mode_flags.in: a composite (O_SYNC, O_TMPFILE) must be matched before
# the bits it contains, and the order is what makes strace print
# "O_CLOEXEC|O_DIRECTORY".
# FASYNC is strace's spelling of O_ASYNC.
_OPEN_ACCESS_MODES = ("O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE")
_OPEN_FLAGS = (
    ("O_CREAT", abi.O_CREAT),
    ("O_EXCL", abi.O_EXCL),
    ("O_NOCTTY", abi.O_NOCTTY),
    ("O_TRUNC", abi.O_TRUNC),
    ("O_APPEND", abi.O_APPEND),
    ("O_NONBLOCK", abi.O_NONBLOCK),
    ("O_SYNC", 0o4010000),
    ("__O_SYNC", 0o4000000),
    ("O_DSYNC", 0o10000),
    ("O_DIRECT", 0o40000),
    ("O_LARGEFILE", 0o100000),
    ("O_NOFOLLOW", abi.O_NOFOLLOW),
    ("O_NOATIME", abi.O_NOATIME),
    ("O_CLOEXEC", abi.O_CLOEXEC),
    ("O_PATH", abi.O_PATH),
    ("O_TMPFILE", abi.O_TMPFILE_BIT | abi.O_DIRECTORY),
    ("__O_TMPFILE", abi.O_TMPFILE_BIT),
    ("O_DIRECTORY", abi.O_DIRECTORY),
    ("FASYNC", 0o20000),
)
# open(2) reads its mode argument only with one of these (strace hides it otherwise).
_OPEN_MODE_USED = abi.O_CREAT | abi.O_TMPFILE_BIT

_CLOCK_NAMES = (
    "CLOCK_REALTIME", "CLOCK_MONOTONIC", "CLOCK_PROCESS_CPUTIME_ID",
    "CLOCK_THREAD_CPUTIME_ID", "CLOCK_MONOTONIC_RAW", "CLOCK_REALTIME_COARSE",
    "CLOCK_MONOTONIC_COARSE", "CLOCK_BOOTTIME", "CLOCK_REALTIME_ALARM",
    "CLOCK_BOOTTIME_ALARM", "CLOCK_SGI_CYCLE", "CLOCK_TAI",
)
_SIGRTMIN = 32  # the kernel's; glibc reserves two, so Python's SIGRTMIN is 34
_SIGRTMAX = 64

# Python names two aliased values by the alias (EDEADLOCK, ENOTSUP) where
# strace and the kernel headers use EDEADLK and EOPNOTSUPP; it also lacks
# EHWPOISON and the kernel-internal codes (include/linux/errno.h) that a
# Sentry modelling the kernel may return, which strace names too.
_ERRNO_NAMES = {
    **errno.errorcode,
    35: "EDEADLK", 95: "EOPNOTSUPP", 133: "EHWPOISON",
    515: "ENOIOCTLCMD", 517: "EPROBE_DEFER", 518: "EOPENSTALE",
    521: "EBADHANDLE", 522: "ENOTSYNC", 523: "EBADCOOKIE", 524: "ENOTSUPP",
    525: "ETOOSMALL", 526: "ESERVERFAULT", 527: "EBADTYPE", 528: "EJUKEBOX",
    529: "EIOCBQUEUED", 530: "ERECALLCONFLICT",
}
# Restart codes never reach the guest (the signal code turns them into a
# restart or EINTR), so strace shows "= ?" and its own description.
_RESTART_CODES = {
    512: ("ERESTARTSYS", "To be restarted if SA_RESTART is set"),
    513: ("ERESTARTNOINTR", "To be restarted"),
    514: ("ERESTARTNOHAND", "To be restarted if no handler"),
    516: ("ERESTART_RESTARTBLOCK", "Interrupted by signal"),
}
_MAX_ERRNO = 4095  # the kernel's: only -4095..-1 are errors, as strace reads them

_ESCAPES = {
    ord('"'): '\\"', ord("\\"): "\\\\", ord("\f"): "\\f", ord("\n"): "\\n",
    ord("\r"): "\\r", ord("\t"): "\\t", ord("\v"): "\\v",
}


def unknown_syscall_name(nr: int) -> str:
    """The name strace gives a syscall number with no table row: ``syscall_0x1c3``.

    :meth:`Strace.enter` shows any name of this form with all six raw
    arguments in hex, since there is no row saying what they are."""
    return f"syscall_{nr:#x}"


def format_result(result: int | None) -> str:
    """The ``= ...`` part: ``= 3``, ``= -1 ENOENT (No such file or directory)``, ``= ?``."""
    if result is None:
        return "= ?"
    if result >= 0 or -result > _MAX_ERRNO:
        return f"= {result}"
    code = -result
    if code in _RESTART_CODES:
        name, text = _RESTART_CODES[code]
        return f"= ? {name} ({text})"
    name = _ERRNO_NAMES.get(code, f"ERRNO_{code}")
    return f"= -1 {name} ({os.strerror(code)})"


def quote(data: bytes) -> str:
    """``data`` as strace quotes it: C escapes, other non-printables in octal."""
    out = ['"']
    for i, c in enumerate(data):
        escape = _ESCAPES.get(c)
        if escape is not None:
            out.append(escape)
        elif 0x20 <= c < 0x7F:
            out.append(chr(c))
        elif i + 1 < len(data) and 0x30 <= data[i + 1] <= 0x37:
            # A following octal digit would read as part of a short escape.
            out.append(f"\\{c:03o}")
        else:
            out.append(f"\\{c:o}")
    out.append('"')
    return "".join(out)


@dataclass(slots=True)
class _OutBuf:
    """An output buffer: its contents exist only once the syscall has run."""

    addr: int
    size: int


@dataclass(slots=True)
class Pending:
    """A syscall between :meth:`Strace.enter` and :meth:`Strace.exit`."""

    vtid: int
    name: str
    args: list[str | _OutBuf] | None  # None: not shown (filtered by `only`)
    mem: Any


class Strace:
    """Formats strace lines for the syscalls the Sentry handles or passes on."""

    def __init__(self, write: Callable[[str], Any], only: frozenset[str] | None = None):
        self._write = write
        self._only = only

    def wants(self, name: str) -> bool:
        return self._only is None or name in self._only

    def enter(
        self, vtid: int, name: str | None, args: tuple | None, raw: tuple[int, ...], mem
    ) -> Pending:
        """Decode the arguments now: another guest thread may rewrite a path
        or an input buffer before the syscall returns, and the line must show
        what the syscall was given.

        A syscall with no table row (``name`` from :func:`unknown_syscall_name`,
        or None when the caller has no number to give, or ``args`` None) shows
        its six raw registers in hex, and is shown even when ``only`` is set:
        the Sentry refuses it, and the trace is where a user looks for why."""
        unknown = name is None or args is None or name.startswith("syscall_")
        if name is None:
            name = "syscall_?"
        if not unknown and not self.wants(name):
            return Pending(vtid, name, None, mem)
        regs = tuple(v & _MASK64 for v in raw[:6]) + (0,) * (6 - len(raw[:6]))
        if unknown:
            return Pending(vtid, name, [_hex(v) for v in regs], mem)
        args = tuple(args)[:6]
        hide_mode = any(
            a.kind == "oflags" and not regs[i] & _OPEN_MODE_USED for i, a in enumerate(args)
        )
        shown: list[str | _OutBuf] = []
        for i, arg in enumerate(args):
            if hide_mode and arg.kind == "mode":
                continue
            shown.append(_decode(arg, regs[i], regs, mem))
        return Pending(vtid, name, shown, mem)

    def exit(self, pending: Pending, result: int | None, action: str) -> None:
        if pending.args is None:
            return
        shown = ", ".join(
            a if isinstance(a, str) else _outbuf(pending.mem, a, result) for a in pending.args
        )
        line = f"[pid {pending.vtid}] {pending.name}({shown}) {format_result(result)}"
        if action:
            line += f" [{action}]"
        self._write(line + "\n")


def _decode(arg, value: int, regs: tuple[int, ...], mem) -> str | _OutBuf:
    kind = arg.kind if isinstance(arg.kind, str) else ""
    kind, _, index = kind.partition(":")
    if kind in ("buf", "outbuf"):
        if not index.isdigit() or int(index) >= len(regs):
            return _hex(value)
        if kind == "outbuf":
            return _OutBuf(value, regs[int(index)])
        return _buffer(mem, value, regs[int(index)])
    if kind == "argv" and arg.name == "envp":
        return _envp(mem, value)
    decoder = _DECODERS.get(kind)
    return decoder(value, mem) if decoder else _hex(value)


def _outbuf(mem, buf: _OutBuf, result: int | None) -> str:
    # Unknown (None) or failed: nothing was written, so show where it would go.
    if result is None or result < 0:
        return _addr(buf.addr)
    return _buffer(mem, buf.addr, min(result, buf.size))


def _s32(value: int) -> int:
    # C int arguments: the kernel reads only the low 32 bits, and so does strace.
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _hex(value: int) -> str:
    return f"{value:#x}" if value else "0"  # C's %#lx prints 0 bare


def _addr(value: int) -> str:
    return f"{value:#x}" if value else "NULL"


def _cstring(mem, addr: int, limit: int) -> str:
    if not addr:
        return "NULL"
    try:
        data = mem.read_cstring(addr, limit + 1)  # one more byte tells "longer than limit"
    except OSError:
        return _addr(addr)
    if len(data) > limit:
        return quote(data[:limit]) + "..."
    return quote(data)


def _buffer(mem, addr: int, length: int) -> str:
    if not addr:
        return "NULL"
    n = min(length, MAX_STRLEN)
    try:
        data = mem.read(addr, n) if n else b""
    except OSError:
        return _addr(addr)
    if len(data) != n:  # a short read is a fault part-way, as for strace's umoven
        return _addr(addr)
    return quote(data) + ("..." if length > MAX_STRLEN else "")


def _pointers(mem, addr: int):
    """Yield the 8-byte pointers of a guest array from ``addr`` on.

    Reads up to a page end at a time (a page is readable as a whole) so a
    long envp costs a few reads; if a chunk fails, retries word by word so
    the array ends exactly where memory does. Raises OSError there."""
    while True:
        if addr > _MASK64 - 7:
            raise OSError(errno.EFAULT, "pointer array wraps around")
        n = max(8, min(_PAGE - addr % _PAGE, _POINTER_CHUNK) // 8 * 8)
        try:
            data = mem.read(addr, n)
        except OSError:
            data = b""
        if len(data) < 8:
            data = mem.read(addr, 8)
            if len(data) < 8:
                raise OSError(errno.EFAULT, "short read of a guest pointer")
        count = len(data) // 8
        yield from struct.unpack(f"<{count}Q", data[: 8 * count])
        addr += 8 * count


def _argv(value: int, mem) -> str:
    if not value:
        return "NULL"
    items: list[str] = []
    try:
        for word in _pointers(mem, value):
            if word == 0:
                break
            if len(items) == MAX_STRLEN:  # strace shows at most -s elements
                items.append("...")
                break
            items.append(_cstring(mem, word, MAX_STRLEN))
    except OSError:
        if not items:
            return _addr(value)
        items.append(f"... /* {value + 8 * len(items):#x} */")
    return "[" + ", ".join(items) + "]"


def _envp(mem, value: int) -> str:
    # strace abbreviates the environment to a count unless run with -v.
    if not value:
        return "NULL"
    count, unterminated = 0, False
    try:
        for word in _pointers(mem, value):
            if word == 0:
                break
            count += 1
    except OSError:
        if count == 0:
            return _addr(value)
        unterminated = True
    plural = "" if count == 1 else "s"
    return f"{value:#x} /* {count} var{plural}{', unterminated' if unterminated else ''} */"


def _oflags(value: int, mem) -> str:
    flags = value & 0xFFFFFFFF
    names = [_OPEN_ACCESS_MODES[flags & 3]]
    flags &= ~3
    for name, bits in _OPEN_FLAGS:
        if flags & bits == bits:
            names.append(name)
            flags &= ~bits
    if flags:
        names.append(f"{flags:#x}")
    return "|".join(names)


_FAMILIES = {0: "AF_UNSPEC", abi.AF_UNIX: "AF_UNIX", abi.AF_INET: "AF_INET",
             abi.AF_INET6: "AF_INET6", abi.AF_NETLINK: "AF_NETLINK", abi.AF_PACKET: "AF_PACKET"}
_SOCKET_TYPES = {1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 4: "SOCK_RDM",
                 5: "SOCK_SEQPACKET", 6: "SOCK_DCCP", 10: "SOCK_PACKET"}


def _family(value: int, mem) -> str:
    return _FAMILIES.get(value & 0xFFFFFFFF) or _signed(value, mem)


def _socktype(value: int, mem) -> str:
    value &= 0xFFFFFFFF
    base = value & abi.SOCK_TYPE_MASK
    names = [_SOCKET_TYPES.get(base, str(base))]
    rest = value & ~abi.SOCK_TYPE_MASK
    for name, bit in (("SOCK_NONBLOCK", abi.SOCK_NONBLOCK), ("SOCK_CLOEXEC", abi.SOCK_CLOEXEC)):
        if rest & bit:
            names.append(name)
            rest &= ~bit
    if rest:
        names.append(f"{rest:#x}")
    return "|".join(names)


def _mode(value: int, mem) -> str:
    mode = value & 0xFFFFFFFF
    return (f"0{mode:o}" if mode else "0").rjust(3, "0")  # C's %#03o


def _dirfd(value: int, mem) -> str:
    fd = _s32(value)
    return "AT_FDCWD" if fd == AT_FDCWD else str(fd)


def _signo(value: int, mem) -> str:
    sig = _s32(value)
    if 0 < sig < _SIGRTMIN:
        try:
            return signal.Signals(sig).name
        except ValueError:
            return str(sig)
    if sig == _SIGRTMIN:
        return "SIGRTMIN"
    if _SIGRTMIN < sig <= _SIGRTMAX:
        return f"SIGRT_{sig - _SIGRTMIN}"
    return str(sig)


def _clockid(value: int, mem) -> str:
    clock = value & 0xFFFFFFFF
    if clock < len(_CLOCK_NAMES):
        return _CLOCK_NAMES[clock]
    return f"{clock:#x} /* CLOCK_??? */"  # as strace 6 prints an unknown clock


def _signed(value: int, mem) -> str:
    return str(_s32(value))


_DECODERS: dict[str, Callable[[int, Any], str]] = {
    "int": _signed,
    "fd": _signed,
    "pid": _signed,
    "uint": lambda value, mem: str(value & 0xFFFFFFFF),
    "size": lambda value, mem: str(value),
    "hex": lambda value, mem: _hex(value),
    "ptr": lambda value, mem: _addr(value),
    "dirfd": _dirfd,
    "path": lambda value, mem: _cstring(mem, value, PATH_MAX - 1),
    "str": lambda value, mem: _cstring(mem, value, MAX_STRLEN),
    "oflags": _oflags,
    "mode": _mode,
    "family": _family,
    "socktype": _socktype,
    "signo": _signo,
    "clockid": _clockid,
    "argv": _argv,
}
