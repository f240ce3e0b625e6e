"""Unix socket paths longer than sockaddr_un holds.

Docker's runtime root is /var/run/docker/runtime-<name>/moby and container ids are 64 hex
digits, so a socket in a container's state directory is past the 108 bytes of sun_path.
The kernel resolves the address as a path, so the directory's descriptor through
/proc/self/fd names the same file in a few bytes (as runc does for its own sockets).
"""

import os

SUN_PATH_MAX = 107  # sizeof(sun_path) less the NUL


class short:
    """`with short(path) as address`: `path`, or an equivalent short enough to bind or
    connect to, while in the block. (A class, not contextlib's decorator: `start` and
    `delete` import this, and contextlib is a tenth of their own imports.)"""

    def __init__(self, path: str):
        self.path, self.directory = path, -1

    def __enter__(self) -> str:
        if len(os.fsencode(self.path)) <= SUN_PATH_MAX:
            return self.path
        self.directory = os.open(os.path.dirname(self.path) or ".",
                                 os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        return f"/proc/self/fd/{self.directory}/{os.path.basename(self.path)}"

    def __exit__(self, *_) -> None:
        if self.directory >= 0:
            os.close(self.directory)
            self.directory = -1
