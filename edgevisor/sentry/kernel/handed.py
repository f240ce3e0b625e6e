"""The descriptors the front end hands the guest: what the Sentry's own table passes on
through exec (its stdin, stdout and stderr, and whatever else is not close-on-exec)."""

import errno
import fcntl
import os

from ..fsimpl.terminal import is_pty


def handed_identities(proc_fd: int) -> frozenset[tuple[int, int]]:
    """The host identities (st_dev, st_ino) of this process's descriptors that survive an
    exec, taken before the guest is forked: files the user gave the sandbox (`> out`, a
    terminal, a pipe), whose metadata the guest may not change (sys_file.py)."""
    listing = os.open("self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=proc_fd)
    try:
        numbers = [int(name) for name in os.listdir(listing)]
    finally:
        os.close(listing)
    out = set()
    for fd in numbers:
        try:
            if fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC:
                continue
            st = os.fstat(fd)
        except OSError as e:
            if e.errno != errno.EBADF:  # the listing's own descriptor, closed since
                raise
            continue
        out.add((st.st_dev, st.st_ino))
    return frozenset(out)


def handed_terminals(proc_fd: int) -> list[int]:
    """One descriptor (a close-on-exec duplicate of the Sentry's own, the widest access
    first) for each host pty among the descriptors handed to the guest: the terminals the
    guest's /dev/pts names (fsimpl/terminal.py)."""
    listing = os.open("self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=proc_fd)
    try:
        numbers = sorted(int(name) for name in os.listdir(listing))
    finally:
        os.close(listing)
    found: dict[tuple[int, int], tuple[int, int]] = {}  # identity -> (rank, fd)
    for fd in numbers:
        try:
            if fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC:
                continue
            st = os.fstat(fd)
            access = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
        except OSError as e:
            if e.errno != errno.EBADF:
                raise
            continue
        if not is_pty(st):
            continue
        rank = 0 if access == os.O_RDWR else 1
        key = (st.st_dev, st.st_ino)
        if key not in found or rank < found[key][0]:
            found[key] = (rank, fd)
    return [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3) for _, fd in found.values()]
