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
    try:  # os.read, not a file object: no fstat and lseek before the reads
        chunks = []
        while chunk := os.read(fd, 8192):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def listdir(proc_fd: int, name: str) -> list[str]:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=proc_fd)
    except FileNotFoundError:
        raise ProcessLookupError(errno.ESRCH, "task gone") from None
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)
