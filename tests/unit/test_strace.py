"""--strace formatting, driven with a fake guest memory (no traced process)."""

from __future__ import annotations

import errno
import os
import re
import struct
from collections import namedtuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgevisor.sentry.strace import (
    MAX_STRLEN,
    PATH_MAX,
    Strace,
    format_result,
    quote,
    unknown_syscall_name,
)

Arg = namedtuple("Arg", "name kind")
MASK64 = (1 << 64) - 1


class FakeMem:
    """Guest memory as a dict of start address -> bytes; anything else faults."""

    def __init__(self, regions: dict[int, bytes] | None = None):
        self.regions = dict(regions or {})

    def _region(self, addr: int) -> tuple[int, bytes]:
        for start, data in self.regions.items():
            if start <= addr < start + len(data):
                return start, data
        raise OSError(errno.EFAULT, f"bad address {addr:#x}")

    def read(self, addr: int, n: int) -> bytes:
        if n == 0:
            return b""
        start, data = self._region(addr)
        if addr + n > start + len(data):
            raise OSError(errno.EFAULT, f"bad address {addr + n - 1:#x}")
        return data[addr - start : addr - start + n]

    def read_cstring(self, addr: int, maxlen: int) -> bytes:
        start, data = self._region(addr)
        tail = data[addr - start :]
        end = tail.find(b"\0")
        if end == -1:
            if len(tail) < maxlen:
                raise OSError(errno.EFAULT, "string runs off mapped memory")
            return tail[:maxlen]
        return tail[: min(end, maxlen)]


class BadMem:
    """Guest memory where every read faults."""

    def read(self, addr: int, n: int) -> bytes:
        raise OSError(errno.EFAULT, "Bad address")

    def read_cstring(self, addr: int, maxlen: int) -> bytes:
        raise OSError(errno.EFAULT, "Bad address")


def cstr(text: str | bytes) -> bytes:
    return (text.encode() if isinstance(text, str) else text) + b"\0"


def pointers(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}Q", *values)


def regs(*values: int) -> tuple[int, ...]:
    return tuple(v & MASK64 for v in values) + (0,) * (6 - len(values))


def trace(name, args, raw, mem=None, result=0, action="emulate", only=None, between=None):
    """Run one syscall through enter/exit and return the lines written."""
    lines: list[str] = []
    strace = Strace(lines.append, only)
    pending = strace.enter(1, name, tuple(args), regs(*raw), mem if mem is not None else FakeMem())
    if between:
        between()
    strace.exit(pending, result, action)
    return lines


def line(*a, **kw) -> str:
    (out,) = trace(*a, **kw)
    return out


def one_arg(kind, value, mem=None, name="x", **kw) -> str:
    """The decoded text of a single argument."""
    out = line("f", [Arg(name, kind)], [value], mem, **kw)
    return re.fullmatch(r"\[pid 1\] f\((.*)\) = .*\n", out, re.S).group(1)


def unquote(text: str) -> bytes:
    """Invert strace's quoting: C escapes and 1-3 digit octal escapes."""
    assert text[0] == '"' and text[-1] == '"', text
    body, out, i = text[1:-1], bytearray(), 0
    simple = {'"': 0x22, "\\": 0x5C, "f": 0x0C, "n": 0x0A, "r": 0x0D, "t": 0x09, "v": 0x0B}
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            assert ch != '"', "unescaped quote"
            out.append(ord(ch))
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in simple:
            out.append(simple[nxt])
            i += 2
            continue
        digits = re.match(r"[0-7]{1,3}", body[i + 1 :]).group(0)
        out.append(int(digits, 8))
        i += 1 + len(digits)
    return bytes(out)


# --- whole lines ---------------------------------------------------------


def test_no_argument_syscall():
    assert trace("getpid", [], [], result=1) == ["[pid 1] getpid() = 1 [emulate]\n"]


def test_openat_failure_line_from_the_brief():
    lines: list[str] = []
    strace = Strace(lines.append)
    mem = FakeMem({0x1000: cstr("/etc/passwd")})
    args = (Arg("dirfd", "dirfd"), Arg("pathname", "path"), Arg("flags", "oflags"), Arg("mode", "mode"))
    pending = strace.enter(3, "openat", args, regs(-100, 0x1000, 0o2000000, 0), mem)
    strace.exit(pending, -errno.ENOENT, "passthrough")
    assert lines == [
        '[pid 3] openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC)'
        " = -1 ENOENT (No such file or directory) [passthrough]\n"
    ]


def test_openat_shows_mode_only_when_the_kernel_reads_it():
    mem = FakeMem({0x1000: cstr("f")})
    args = [Arg("dirfd", "dirfd"), Arg("pathname", "path"), Arg("flags", "oflags"), Arg("mode", "mode")]
    assert line("openat", args, [-100, 0x1000, 0o1101, 0o644], mem, result=3) == (
        '[pid 1] openat(AT_FDCWD, "f", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 3 [emulate]\n'
    )
    assert line("openat", args, [-100, 0x1000, 0o20200002, 0o600], mem, result=4) == (
        '[pid 1] openat(AT_FDCWD, "f", O_RDWR|O_TMPFILE, 0600) = 4 [emulate]\n'
    )


def test_unknown_syscall_shows_six_raw_args_in_hex():
    name = unknown_syscall_name(0x1F4)
    assert name == "syscall_0x1f4"
    lines: list[str] = []
    strace = Strace(lines.append)
    pending = strace.enter(2, name, (), (0, 0, 0, 0, 0, 0), FakeMem())
    strace.exit(pending, -errno.ENOSYS, "unsupported")
    assert lines == [
        "[pid 2] syscall_0x1f4(0, 0, 0, 0, 0, 0) = -1 ENOSYS (Function not implemented) [unsupported]\n"
    ]
    assert line("syscall_0x1c3", [], [1, 2, 0xFFFFFFFFFFFFFFFF], result=None) == (
        "[pid 1] syscall_0x1c3(0x1, 0x2, 0xffffffffffffffff, 0, 0, 0) = ? [emulate]\n"
    )


def test_args_none_is_treated_as_unknown():
    lines: list[str] = []
    strace = Strace(lines.append)
    strace.exit(strace.enter(1, "mystery", None, regs(7), FakeMem()), 0, "emulate")
    assert lines == ["[pid 1] mystery(0x7, 0, 0, 0, 0, 0) = 0 [emulate]\n"]


def test_unknown_syscall_is_shown_even_with_only_and_without_a_name():
    # The dispatcher may have no name for a number with no row: never crash.
    lines: list[str] = []
    strace = Strace(lines.append, frozenset({"read"}))
    strace.exit(strace.enter(4, None, (), regs(1), FakeMem()), -errno.ENOSYS, "unsupported")
    strace.exit(strace.enter(4, "syscall_0x1c3", (), regs(), FakeMem()), -errno.ENOSYS, "unsupported")
    assert lines == [
        "[pid 4] syscall_?(0x1, 0, 0, 0, 0, 0) = -1 ENOSYS (Function not implemented) [unsupported]\n",
        "[pid 4] syscall_0x1c3(0, 0, 0, 0, 0, 0) = -1 ENOSYS (Function not implemented) [unsupported]\n",
    ]


def test_short_raw_and_signed_registers_are_tolerated():
    lines: list[str] = []
    strace = Strace(lines.append)
    pending = strace.enter(1, "close", (Arg("fd", "fd"), Arg("extra", "hex")), (-1,), FakeMem())
    strace.exit(pending, 0, "emulate")
    assert lines == ["[pid 1] close(-1, 0) = 0 [emulate]\n"]


def test_unknown_result_prints_question_mark():
    assert line("exit_group", [Arg("status", "int")], [0], result=None, action="passthrough") == (
        "[pid 1] exit_group(0) = ? [passthrough]\n"
    )


def test_empty_action_prints_no_brackets():
    assert line("getpid", [], [], result=5, action="") == "[pid 1] getpid() = 5\n"


def test_only_filters_names():
    strace = Strace(lambda s: None, frozenset({"read"}))
    assert strace.wants("read") and not strace.wants("write")
    assert Strace(lambda s: None).wants("anything")
    args = [Arg("fd", "fd")]
    assert trace("write", args, [1], only=frozenset({"read"})) == []
    assert trace("read", args, [1], only=frozenset({"read"})) == ["[pid 1] read(1) = 0 [emulate]\n"]


def test_input_decoded_at_entry_not_exit():
    # Another guest thread may rewrite the path while the syscall runs (TOCTOU):
    # the line must show what the syscall was given.
    mem = FakeMem({0x1000: cstr("/etc/passwd")})

    def rewrite():
        mem.regions[0x1000] = cstr("/etc/shadow")

    out = line("unlink", [Arg("pathname", "path")], [0x1000], mem, between=rewrite)
    assert out == '[pid 1] unlink("/etc/passwd") = 0 [emulate]\n'


# --- output buffers --------------------------------------------------------

READ_ARGS = [Arg("fd", "fd"), Arg("buf", "outbuf:2"), Arg("count", "size")]


def test_outbuf_decoded_at_exit_with_result_bytes():
    mem = FakeMem({0x2000: b"\0" * 64})

    def kernel_fills():
        mem.regions[0x2000] = b"hello\n" + b"\0" * 58

    out = line("read", READ_ARGS, [3, 0x2000, 832], mem, result=6, between=kernel_fills)
    assert out == '[pid 1] read(3, "hello\\n", 832) = 6 [emulate]\n'


def test_outbuf_truncated_like_strace():
    mem = FakeMem({0x2000: b"0123456789" * 4})
    out = line("read", READ_ARGS, [3, 0x2000, 40], mem, result=40)
    assert out == '[pid 1] read(3, "01234567890123456789012345678901"..., 40) = 40 [emulate]\n'


def test_outbuf_uses_smaller_of_result_and_count():
    mem = FakeMem({0x2000: b"abcdef"})
    assert one_arg("outbuf:0", 0x2000, mem) == '""'  # count register is 0x2000 itself here
    out = line("read", READ_ARGS, [3, 0x2000, 2], mem, result=6)
    assert out == '[pid 1] read(3, "ab", 2) = 6 [emulate]\n'


@pytest.mark.parametrize("result", [-errno.EBADF, None])
def test_outbuf_without_data_prints_pointer(result):
    mem = FakeMem({0x2000: b"secret"})
    out = line("read", READ_ARGS, [3, 0x2000, 6], mem, result=result)
    assert out.startswith("[pid 1] read(3, 0x2000, 6) = ")


def test_outbuf_unreadable_at_exit_prints_pointer():
    out = line("read", READ_ARGS, [3, 0x2000, 6], BadMem(), result=6)
    assert out == "[pid 1] read(3, 0x2000, 6) = 6 [emulate]\n"


# --- input buffers and strings -----------------------------------------------

WRITE_ARGS = [Arg("fd", "fd"), Arg("buf", "buf:2"), Arg("count", "size")]


def test_write_buffer():
    mem = FakeMem({0x3000: b"hi\n\0junk"})
    assert line("write", WRITE_ARGS, [1, 0x3000, 3], mem, result=3) == (
        '[pid 1] write(1, "hi\\n", 3) = 3 [emulate]\n'
    )
    # A buffer is not a C string: NULs are data.
    assert line("write", WRITE_ARGS, [1, 0x3000, 5], mem, result=5).startswith(
        '[pid 1] write(1, "hi\\n\\0j", 5)'
    )


def test_buffer_edge_cases():
    mem = FakeMem({0x3000: b"x" * 40})
    assert line("write", WRITE_ARGS, [1, 0x3000, 0], mem) == '[pid 1] write(1, "", 0) = 0 [emulate]\n'
    assert line("write", WRITE_ARGS, [1, 0, 5], mem) == "[pid 1] write(1, NULL, 5) = 0 [emulate]\n"
    assert line("write", WRITE_ARGS, [1, 0x3000, 32], mem).startswith(f'[pid 1] write(1, "{"x" * 32}", 32)')
    assert line("write", WRITE_ARGS, [1, 0x3000, 33], mem).startswith(f'[pid 1] write(1, "{"x" * 32}"..., 33)')
    # Only the shown bytes are read: a huge count over a short mapping still decodes.
    huge = line("write", WRITE_ARGS, [1, 0x3000, 1 << 40], mem)
    assert huge.startswith(f'[pid 1] write(1, "{"x" * 32}"..., 1099511627776)')
    assert line("write", WRITE_ARGS, [1, 0x3000, 0], BadMem()).startswith('[pid 1] write(1, "", 0)')
    # Partly unmapped shown bytes: a fault, shown as the pointer.
    short = FakeMem({0x3000: b"abc"})
    assert line("write", WRITE_ARGS, [1, 0x3000, 10], short).startswith("[pid 1] write(1, 0x3000, 10)")


@pytest.mark.parametrize(
    "data, text",
    [
        (b"plain", '"plain"'),
        (b'q"b\\', r'"q\"b\\"'),
        (b"\t\n\r\f\v", r'"\t\n\r\f\v"'),
        (b"\0", r'"\0"'),
        (b"\x001", r'"\0001"'),  # a following octal digit forces three digits
        (b"\x008", r'"\08"'),  # 8 is not an octal digit
        (b"\x07a", r'"\7a"'),
        (b"\x1b[0m", r'"\33[0m"'),
        (b"\xff\xfe", r'"\377\376"'),
        (b"\x7f", r'"\177"'),
        ("é".encode(), r'"\303\251"'),
    ],
)
def test_quote(data, text):
    assert quote(data) == text


def test_str_truncated_at_32_with_ellipsis_after_quote():
    mem = FakeMem({0x1000: cstr("a" * 32), 0x2000: cstr("b" * 33), 0x3000: cstr("")})
    assert one_arg("str", 0x1000, mem) == '"' + "a" * 32 + '"'
    assert one_arg("str", 0x2000, mem) == '"' + "b" * 32 + '"...'
    assert one_arg("str", 0x3000, mem) == '""'
    assert one_arg("str", 0, mem) == "NULL"
    assert one_arg("str", 0x9000, mem) == "0x9000"


def test_paths_are_not_cut_at_32_like_strace():
    # strace prints paths up to PATH_MAX - 1 bytes whatever -s says.
    long_path = "/usr/lib/x86_64-linux-gnu/" + "d/" * 40 + "libc.so.6"
    huge = "p" * PATH_MAX
    mem = FakeMem({0x1000: cstr(long_path), 0x8000: cstr(huge)})
    assert one_arg("path", 0x1000, mem) == f'"{long_path}"'
    assert one_arg("path", 0x8000, mem) == '"' + "p" * (PATH_MAX - 1) + '"...'
    assert one_arg("path", 0, mem) == "NULL"
    assert one_arg("path", 0xDEAD0000, mem) == "0xdead0000"


def test_string_running_into_a_fault_prints_pointer():
    mem = FakeMem({0x1000: b"no terminator"})
    assert one_arg("path", 0x1000, mem) == "0x1000"


# --- scalar kinds -------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, value, text",
    [
        ("int", 0, "0"),
        ("int", 0xFFFFFFFF, "-1"),
        ("int", MASK64, "-1"),
        ("int", 0x1_0000_0005, "5"),  # only the low 32 bits reach an int parameter
        ("fd", 0xFFFFFFFFFFFFFF9C, "-100"),
        ("pid", 0xFFFFFFFF, "-1"),
        ("uint", 0xFFFFFFFF, "4294967295"),
        ("uint", 0x1_0000_0007, "7"),
        ("size", MASK64, "18446744073709551615"),
        ("size", 832, "832"),
        ("hex", 0, "0"),
        ("hex", 0x7F00DEAD, "0x7f00dead"),
        ("ptr", 0, "NULL"),
        ("ptr", 0x7FFE0000, "0x7ffe0000"),
        ("dirfd", 0xFFFFFF9C, "AT_FDCWD"),
        ("dirfd", 0xFFFFFFFFFFFFFF9C, "AT_FDCWD"),
        ("dirfd", 3, "3"),
        ("dirfd", 0xFFFFFFFF, "-1"),
        ("mode", 0o644, "0644"),
        ("mode", 0, "000"),
        ("mode", 4, "004"),
        ("mode", 0o4755, "04755"),
        ("signo", 9, "SIGKILL"),
        ("signo", 6, "SIGABRT"),
        ("signo", 17, "SIGCHLD"),
        ("signo", 0, "0"),
        ("signo", 32, "SIGRTMIN"),
        ("signo", 34, "SIGRT_2"),
        ("signo", 64, "SIGRT_32"),
        ("signo", 65, "65"),
        ("signo", 0xFFFFFFFF, "-1"),
        ("clockid", 0, "CLOCK_REALTIME"),
        ("clockid", 1, "CLOCK_MONOTONIC"),
        ("clockid", 7, "CLOCK_BOOTTIME"),
        ("clockid", 11, "CLOCK_TAI"),
        ("clockid", 12, "0xc /* CLOCK_??? */"),
        ("clockid", 0xFFFFFFFFFFFFFFFE, "0xfffffffe /* CLOCK_??? */"),
        ("no-such-kind", 0, "0"),
        ("no-such-kind", 255, "0xff"),
        ("buf:x", 16, "0x10"),
        ("outbuf:9", 16, "0x10"),
    ],
)
def test_scalar_kinds(kind, value, text):
    assert one_arg(kind, value) == text


@pytest.mark.parametrize(
    "flags, text",
    [
        (0, "O_RDONLY"),
        (1, "O_WRONLY"),
        (2, "O_RDWR"),
        (3, "O_ACCMODE"),
        (0o2000000, "O_RDONLY|O_CLOEXEC"),
        (0o1101, "O_WRONLY|O_CREAT|O_TRUNC"),
        (0o2204000, "O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY"),  # as strace prints `ls`
        (0o302, "O_RDWR|O_CREAT|O_EXCL"),
        (0o2401, "O_WRONLY|O_NOCTTY|O_APPEND"),
        (0o4010001, "O_WRONLY|O_SYNC"),
        (0o10000, "O_RDONLY|O_DSYNC"),
        (0o4000000, "O_RDONLY|__O_SYNC"),
        (0o20000, "O_RDONLY|FASYNC"),
        (0o40000 | 0o100000, "O_RDONLY|O_DIRECT|O_LARGEFILE"),
        (0o400000 | 0o1000000, "O_RDONLY|O_NOFOLLOW|O_NOATIME"),
        (0o10000000 | 0o2000000, "O_RDONLY|O_CLOEXEC|O_PATH"),
        (0o20200002, "O_RDWR|O_TMPFILE"),
        (0x80000000, "O_RDONLY|0x80000000"),
        (0x1_0000_0000 | 2, "O_RDWR"),  # flags is an int: high register bits ignored
    ],
)
def test_open_flags(flags, text):
    assert one_arg("oflags", flags) == text


# --- argv and envp --------------------------------------------------------------


def argv_mem(strings, base=0x10000, strings_at=0x20000):
    regions, ptrs, addr = {}, [], strings_at
    for s in strings:
        regions[addr] = cstr(s)
        ptrs.append(addr)
        addr += 0x100
    regions[base] = pointers(*ptrs, 0)
    return FakeMem(regions)


def test_argv():
    mem = argv_mem(["sh", "-c", "echo hi"])
    assert one_arg("argv", 0x10000, mem, name="argv") == '["sh", "-c", "echo hi"]'
    assert one_arg("argv", 0, mem, name="argv") == "NULL"
    assert one_arg("argv", 0x10000, FakeMem({0x10000: pointers(0)}), name="argv") == "[]"


def test_argv_truncation_rules():
    many = argv_mem([f"a{i}" for i in range(40)])
    shown = ", ".join(f'"a{i}"' for i in range(32))
    assert one_arg("argv", 0x10000, many, name="argv") == f"[{shown}, ...]"
    exactly = argv_mem([f"a{i}" for i in range(32)])
    assert one_arg("argv", 0x10000, exactly, name="argv") == f"[{shown}]"
    long_arg = argv_mem(["x" * 40])
    assert one_arg("argv", 0x10000, long_arg, name="argv") == '["' + "x" * 32 + '"...]'


def test_argv_faults():
    assert one_arg("argv", 0x10000, FakeMem(), name="argv") == "0x10000"
    # An element pointing nowhere prints as that pointer.
    mem = FakeMem({0x10000: pointers(0x20000, 0xBAD000, 0), 0x20000: cstr("ls")})
    assert one_arg("argv", 0x10000, mem, name="argv") == '["ls", 0xbad000]'
    # The array itself running into unmapped memory, as strace shows it.
    mem = FakeMem({0x10000: pointers(0x20000, 0x20000), 0x20000: cstr("ls")})
    assert one_arg("argv", 0x10000, mem, name="argv") == '["ls", "ls", ... /* 0x10010 */]'


def test_envp_is_abbreviated_to_a_count():
    mem = argv_mem(["A=1", "B=2"])
    assert one_arg("argv", 0x10000, mem, name="envp") == "0x10000 /* 2 vars */"
    assert one_arg("argv", 0x10000, argv_mem(["A=1"]), name="envp") == "0x10000 /* 1 var */"
    assert one_arg("argv", 0x10000, argv_mem([]), name="envp") == "0x10000 /* 0 vars */"
    assert one_arg("argv", 0, mem, name="envp") == "NULL"
    assert one_arg("argv", 0x10000, FakeMem(), name="envp") == "0x10000"
    cut = FakeMem({0x10000: pointers(1, 2, 3)})
    assert one_arg("argv", 0x10000, cut, name="envp") == "0x10000 /* 3 vars, unterminated */"


def test_long_envp_across_pages():
    # 1000 entries start mid-page and cross page boundaries.
    mem = FakeMem({0x10FF8: pointers(*([0x20000] * 1000), 0)})
    assert one_arg("argv", 0x10FF8, mem, name="envp") == "0x10ff8 /* 1000 vars */"


def test_execve_line():
    mem = argv_mem(["sh", "-c", "echo hi"])
    mem.regions[0x30000] = pointers(0x20000, 0)
    mem.regions[0x40000] = cstr("/bin/sh")
    args = [Arg("filename", "path"), Arg("argv", "argv"), Arg("envp", "argv")]
    assert line("execve", args, [0x40000, 0x10000, 0x30000], mem, action="passthrough") == (
        '[pid 1] execve("/bin/sh", ["sh", "-c", "echo hi"], 0x30000 /* 1 var */) = 0 [passthrough]\n'
    )


# --- results ------------------------------------------------------------------


@pytest.mark.parametrize(
    "result, text",
    [
        (0, "= 0"),
        (3, "= 3"),
        (None, "= ?"),
        (-errno.ENOENT, "= -1 ENOENT (No such file or directory)"),
        (-errno.EAGAIN, "= -1 EAGAIN (Resource temporarily unavailable)"),
        (-35, "= -1 EDEADLK (Resource deadlock avoided)"),
        (-95, "= -1 EOPNOTSUPP (Operation not supported)"),
        (-512, "= ? ERESTARTSYS (To be restarted if SA_RESTART is set)"),
        (-513, "= ? ERESTARTNOINTR (To be restarted)"),
        (-514, "= ? ERESTARTNOHAND (To be restarted if no handler)"),
        (-516, "= ? ERESTART_RESTARTBLOCK (Interrupted by signal)"),
        (-524, "= -1 ENOTSUPP (Unknown error 524)"),
        (-1000, "= -1 ERRNO_1000 (Unknown error 1000)"),
        (-5000, "= -5000"),  # outside -4095..-1 it is a value, not an errno
    ],
)
def test_format_result(result, text):
    assert format_result(result) == text


@pytest.mark.parametrize("code", sorted(errno.errorcode))
def test_format_result_for_every_errno(code):
    text = format_result(-code)
    name, message = re.fullmatch(r"= -1 (E\w+) \((.*)\)", text).groups()
    assert getattr(errno, name) == code  # the canonical name or its alias
    assert message == os.strerror(code)


# --- properties -------------------------------------------------------------------


@given(st.binary(max_size=MAX_STRLEN))
def test_quote_round_trips(data):
    assert unquote(quote(data)) == data


@given(st.binary(max_size=MAX_STRLEN))
def test_buffer_argument_round_trips(data):
    mem = FakeMem({0x3000: data + b"\0"})
    out = line("write", WRITE_ARGS, [1, 0x3000, len(data)], mem, result=len(data))
    quoted = re.fullmatch(r'\[pid 1\] write\(1, (".*"), \d+\) = .*\n', out, re.S).group(1)
    assert unquote(quoted) == data


@given(st.binary(max_size=MAX_STRLEN).filter(lambda b: b"\0" not in b))
def test_string_argument_round_trips(data):
    mem = FakeMem({0x1000: data + b"\0"})
    assert unquote(one_arg("str", 0x1000, mem)) == data


POINTER_KINDS = ["path", "str", "buf:1", "outbuf:1", "argv"]


@given(
    kind=st.sampled_from(POINTER_KINDS),
    name=st.sampled_from(["argv", "envp", "buf"]),
    addr=st.integers(1, MASK64),
    length=st.integers(1, MASK64),
    result=st.one_of(st.none(), st.integers(-4095, -1), st.integers(1, 1 << 20)),
)
def test_unreadable_memory_prints_the_pointer(kind, name, addr, length, result):
    # (Zero bytes need no read, so a zero-length buffer prints "" as in strace.)
    out = line("f", [Arg(name, kind), Arg("n", "size")], [addr, length], BadMem(), result=result)
    assert out.startswith(f"[pid 1] f({addr:#x}, {length}) ")


ALL_KINDS = [
    "int", "uint", "size", "hex", "ptr", "fd", "dirfd", "path", "str", "buf:0", "buf:5",
    "outbuf:2", "outbuf:5", "oflags", "mode", "signo", "pid", "clockid", "argv", "bogus", "buf:",
]


@st.composite
def guest_memory(draw):
    regions = {}
    for _ in range(draw(st.integers(0, 4))):
        start = draw(st.sampled_from([0x1000, 0x2000, 0x10000, 0x10FF8, 0x20000]))
        regions[start] = draw(st.binary(max_size=64))
    return FakeMem(regions)


@settings(max_examples=300)
@given(
    vtid=st.integers(1, 1 << 22),
    kinds=st.lists(st.sampled_from(ALL_KINDS), max_size=6),
    names=st.lists(st.sampled_from(["argv", "envp", "fd", "mode"]), min_size=6, max_size=6),
    raw=st.lists(
        st.one_of(
            st.sampled_from([0, 0x1000, 0x2000, 0x10000, 0x10FF8, 0x20000, 0x1004]),
            st.integers(0, MASK64),
        ),
        min_size=6,
        max_size=6,
    ),
    mem=guest_memory(),
    result=st.one_of(st.none(), st.integers(-(1 << 63), 1 << 63)),
    action=st.sampled_from(["emulate", "passthrough", "unsupported", "denied"]),
)
def test_every_line_is_one_strace_line(vtid, kinds, names, raw, mem, result, action):
    lines: list[str] = []
    strace = Strace(lines.append)
    args = tuple(Arg(n, k) for n, k in zip(names, kinds))
    strace.exit(strace.enter(vtid, "f", args, tuple(raw), mem), result, action)
    (out,) = lines
    assert out.startswith(f"[pid {vtid}] f(")
    assert out.endswith(f" [{action}]\n")
    assert out.count("\n") == 1


@pytest.mark.parametrize("decoder,value,shown", [
    ("_family", 10, "AF_INET6"),
    ("_family", 99, "99"),
    ("_socktype", 0x80802, "SOCK_DGRAM|SOCK_NONBLOCK|SOCK_CLOEXEC"),
    ("_socktype", 0x10000001, "SOCK_STREAM|0x10000000"),
    ("_socktype", 0xF, "15"),
])
def test_socket_argument_decoders(decoder, value, shown):
    from edgevisor.sentry import strace
    assert getattr(strace, decoder)(value, None) == shown
