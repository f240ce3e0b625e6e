"""Compiled seccomp programs, kept between runs so that a start does not import libseccomp
and compile five filters again (about 30 ms, most of it the import).

A cached program is a security boundary: whoever can write one decides what the next
guest, Sentry or gofer may call. So the cache is trusted exactly as far as the code that
would have built the program, and no further:

- It lives beside that code (`__bpfcache__` in this package, as `__pycache__` does), or in
  $EDGEVISOR_BPF_CACHE (`off` turns it off).
- The directory, and every directory above it, must belong to root or to us and be
  writable by nobody else (a sticky directory's other users cannot move what we own); the
  file must be a regular file, not a link of any kind, with one name, owned by root or us,
  writable by nobody else, and hold whole BPF instructions, at most the kernel's 4096.
  Each check is made on the opened descriptor (fstat), so nothing can be swapped in
  between checking and reading.
- Anything else is not read, and the program is compiled as if there were no cache. A
  directory that fails the checks is not written to either.

An entry's name is a hash of everything its program depends on: which filter, its inputs
(the syscall table's rows, the trap action, the options), the architecture, and the size
and modification time of each module that writes programs (as pyc files are checked
against their source). A newer libseccomp is not in it: it may compile the same rules
differently but not to a different meaning.
"""

import functools
import os
import stat
from _blake2 import blake2b  # hashlib's own, without hashlib's OpenSSL: 4 ms at each start
from collections.abc import Callable

from .. import abi

_FORMAT = 1
_HERE = os.path.dirname(os.path.abspath(__file__))
_PACKAGE = os.path.dirname(_HERE)
# The modules whose code decides what a program holds.
_GENERATORS = ("abi.py", "platform/bpf.py", "platform/bpf_cache.py", "platform/sentry_filter.py",
               "gofer/allowlist.py", "sentry/net/publish.py", "oci/seccomp.py")


def cache_dir() -> str | None:
    where = os.environ.get("EDGEVISOR_BPF_CACHE")
    if where == "off":
        return None
    return where or os.path.join(_HERE, "__bpfcache__")


@functools.cache
def _code_stamp() -> str:
    stamps = []
    for module in _GENERATORS:
        st = os.stat(os.path.join(_PACKAGE, module))
        stamps.append((module, st.st_size, st.st_mtime_ns))
    text = repr((_FORMAT, os.uname().machine, stamps))
    return blake2b(text.encode(), digest_size=8).hexdigest()


def key(name: str, inputs: tuple) -> str:
    """The entry's name: the filter, the code that compiles it, and a hash of its inputs."""
    digest = blake2b(repr((name, inputs)).encode(), digest_size=12).hexdigest()
    return f"{name}-{_code_stamp()}-{digest}.bpf"


def table_digest(table) -> str:
    """What of a syscall table a filter depends on."""
    rows = sorted((r.nr, r.action, r.errno, r.refuse) for r in table.by_nr.values())
    return blake2b(repr((table.arch, table.audit_arch, rows)).encode()).hexdigest()


def program(name: str, inputs: tuple, compile_program: Callable[[], bytes]) -> bytes:
    """The program `compile_program()` returns for these inputs, from the cache if a trusted
    entry holds it (and into the cache, where it may be written, if not)."""
    where = cache_dir()
    if where is None:
        return compile_program()
    entry = key(name, inputs)
    dir_fd = _open_trusted_dir(where)
    try:
        if dir_fd is not None:
            cached = _read_trusted(dir_fd, entry)
            if cached is not None:
                return cached
        built = compile_program()
        if dir_fd is not None:
            _write(dir_fd, entry, built)
        return built
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


def _trusted_owner(st: os.stat_result) -> bool:
    return st.st_uid in (0, os.geteuid())


def _open_trusted_dir(path: str) -> int | None:
    """A descriptor for the cache directory (made if missing), or None where it, or a
    directory above it, could be changed by someone other than root and us."""
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not _trusted_owner(st) or st.st_mode & 0o022:
            os.close(fd)
            return None
        child, current = st, os.open("..", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
        try:
            while True:
                parent = os.fstat(current)
                sticky = parent.st_mode & stat.S_ISVTX
                if not _trusted_owner(parent) or (parent.st_mode & 0o022 and not sticky):
                    os.close(fd)
                    return None
                if (parent.st_dev, parent.st_ino) == (child.st_dev, child.st_ino):
                    return fd  # the root: its .. is itself
                up = os.open("..", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=current)
                os.close(current)
                child, current = parent, up
        finally:
            os.close(current)
    except OSError:
        os.close(fd)
        return None


def _read_trusted(dir_fd: int, entry: str) -> bytes | None:
    try:
        fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
                     | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        size = st.st_size
        if (not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or not _trusted_owner(st)
                or st.st_mode & 0o022 or size == 0 or size % abi.SOCK_FILTER.size
                or size > abi.BPF_MAXINSNS * abi.SOCK_FILTER.size):
            return None
        data = os.pread(fd, size + 1, 0)
        return data if len(data) == size else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _write(dir_fd: int, entry: str, program: bytes) -> None:
    """Write a new file and rename it into place: a reader sees the whole program or none,
    and an entry that failed the checks is replaced. Entries compiled by an older version of
    the code are removed, so that the cache does not grow with every upgrade."""
    name, stamp = entry.split("-")[:2]
    try:
        for old in os.listdir(dir_fd):
            if old.startswith(f"{name}-") and not old.startswith(f"{name}-{stamp}-"):
                os.unlink(old, dir_fd=dir_fd)
    except OSError:
        pass
    temp = f".{entry}.{os.getpid()}"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o644, dir_fd=dir_fd)
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(program)
        os.replace(temp, entry, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError:
        try:
            os.unlink(temp, dir_fd=dir_fd)
        except OSError:
            pass
