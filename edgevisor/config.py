"""What one sandbox run is asked to do, independent of the front end that asked."""

import os
from dataclasses import dataclass, field

from .platform.isolation import Volume


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
    volumes: tuple[Volume, ...] = field(default_factory=tuple)

    def validate(self, table) -> None:
        if not self.argv:
            raise ConfigError("missing command: edgevisor do [flags] -- CMD [ARGS...]")
        if not os.path.isdir(self.rootfs):
            raise ConfigError(f"rootfs {self.rootfs!r} is not a directory")
        if not self.hostname or len(self.hostname.encode()) > 64:
            raise ConfigError(f"hostname {self.hostname!r} must be 1 to 64 bytes")
        targets = set()
        for v in self.volumes:
            if not os.path.isdir(v.source):
                raise ConfigError(f"-v: {v.source!r} is not a directory")
            if not v.target.startswith("/") or v.target.rstrip("/") in ("", "/proc", "/dev"):
                raise ConfigError(f"-v: {v.target!r} must be an absolute path other than "
                                  "/, /proc and /dev")
            if v.target in targets:
                raise ConfigError(f"-v: {v.target!r} is mounted twice")
            targets.add(v.target)
        if self.strace_syscalls is not None:
            unknown = sorted(n for n in self.strace_syscalls if n not in table.by_name)
            if unknown:
                raise ConfigError(f"--strace-syscalls: unknown syscall(s): {', '.join(unknown)}")
