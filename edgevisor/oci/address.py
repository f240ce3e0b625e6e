"""Unix socket paths longer than sockaddr_un holds.

Docker's runtime root is /var/run/docker/runtime-<name>/moby and container ids are 64 hex
digits, so a socket in a container's state directory is past the 108 bytes of sun_path.
The kernel resolves the address as a path, so the directory's descriptor through
/proc/self/fd names the same file in a few bytes (as runc does for its own sockets).
"""

import contextlib
import os

SUN_PATH_MAX = 107  # sizeof(sun_path) less the NUL


@contextlib.contextmanager
def short(path: str):
    """`path`, or an equivalent short enough to bind or connect to, while in the block."""
    if len(os.fsencode(path)) <= SUN_PATH_MAX:
        yield path
        return
    directory = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{directory}/{os.path.basename(path)}"
    finally:
        os.close(directory)
