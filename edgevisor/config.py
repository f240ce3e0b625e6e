"""What one sandbox run is asked to do, independent of the front end that asked."""

import os
from dataclasses import dataclass


class ConfigError(Exception):
    """A problem with what the user asked for: reported as one line, never a traceback."""


@dataclass
class RunConfig:
    argv: list[str]
    platform: str
    hostname: str = "edgevisor"
    rootfs: str = "/"
    overlay: bool = True
    strace: bool = False
    strace_syscalls: frozenset[str] | None = None
    log: str | None = None
    debug: bool = False
    env: dict[str, str] | None = None
    cwd: str | None = None

    def validate(self, table) -> None:
        if not self.argv:
            raise ConfigError("missing command: edgevisor do [flags] -- CMD [ARGS...]")
        if not os.path.isdir(self.rootfs):
            raise ConfigError(f"rootfs {self.rootfs!r} is not a directory")
        if not self.hostname or len(self.hostname.encode()) > 64:
            raise ConfigError(f"hostname {self.hostname!r} must be 1 to 64 bytes")
        if self.strace_syscalls is not None:
            unknown = sorted(n for n in self.strace_syscalls if n not in table.by_name)
            if unknown:
                raise ConfigError(f"--strace-syscalls: unknown syscall(s): {', '.join(unknown)}")
