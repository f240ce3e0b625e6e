"""What one sandbox run is asked to do, independent of the front end that asked."""

import os
from dataclasses import dataclass, field

from .platform.cgroups import Limits
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
    limits: Limits = field(default_factory=Limits)

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
        limits = self.limits
        if limits.pids is not None and limits.pids < 1:
            raise ConfigError(f"--pids-limit {limits.pids}: must be at least 1")
        if limits.memory is not None and limits.memory < 1 << 20:
            raise ConfigError(f"--memory {limits.memory}: must be at least 1m")
        if limits.cpus is not None and not 0.01 <= limits.cpus <= os.cpu_count():
            raise ConfigError(f"--cpus {limits.cpus}: must be between 0.01 and {os.cpu_count()}")
        if self.strace_syscalls is not None:
            unknown = sorted(n for n in self.strace_syscalls if n not in table.by_name)
            if unknown:
                raise ConfigError(f"--strace-syscalls: unknown syscall(s): {', '.join(unknown)}")
