"""Reading a procfs the Sentry holds a descriptor of (its own pid namespace's or the guest's)."""

import errno
import os


def read(proc_fd: int, name: str) -> bytes:
    """The content of `name` (such as "123/status") under the procfs at `proc_fd`; ESRCH
    when the task it belongs to is gone."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc_fd)
    except FileNotFoundError:
        raise ProcessLookupError(errno.ESRCH, "task gone") from None
    try:
        return read_all(fd)
    finally:
        os.close(fd)


def read_all(fd: int) -> bytes:
    """An open procfs file's whole content, listed afresh (a read from offset 0 restarts the
    listing); preads, with no file object's fstat and lseek before them."""
    chunks, offset = [], 0
    while chunk := os.pread(fd, 1 << 16, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def listdir(proc_fd: int, name: str) -> list[str]:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=proc_fd)
    except FileNotFoundError:
        raise ProcessLookupError(errno.ESRCH, "task gone") from None
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)
