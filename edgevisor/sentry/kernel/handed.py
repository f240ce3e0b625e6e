"""The descriptors the front end hands the guest: what the Sentry's own table passes on
through exec (its stdin, stdout and stderr, and whatever else is not close-on-exec)."""

import errno
import fcntl
import os


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
