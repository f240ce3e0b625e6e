"""What one sandbox run is asked to do, independent of the front end that asked."""

import os
import signal
from dataclasses import dataclass, field

from . import abi
from .errors import (EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND, EXIT_SETUP_FAILED,  # noqa: F401
                     ConfigError, SetupError)
from .platform import NAMES as PLATFORM_NAMES
from .platform.cgroups import Limits
from .platform.isolation import KEPT_CAPABILITIES, Tmpfs, Volume
from .sentry.net.publish import Port
from .sentry.net import MODES as NETWORK_MODES


# The bound of the sandbox's in-memory file systems (the overlay's upper layer, /tmp, /dev,
# /dev/shm: one tmpfs) when --scratch-size is not given: this, or a quarter of the host's RAM
# if that is less, and never more than --memory.
DEFAULT_SCRATCH_SIZE = 1 << 30
MIN_SIZE = 1 << 20  # of --memory and --scratch-size

# Where the guest never sees the host's directory of the same name: the sandbox's own.
_OWN_MOUNTS = ("/tmp", "/dev", "/proc", "/sys")


@dataclass
class RunConfig:
    argv: list[str]
    platform: str
    hostname: str = "edgevisor"
    rootfs: str = "/"
    overlay: bool = True
    directfs: bool = True  # the Sentry opens beneath the gofer's descriptors (fsimpl/directfs)
    strace: bool = False
    strace_syscalls: frozenset[str] | None = None
    log: str | None = None
    debug: bool = False
    env: dict[str, str] | None = None  # None: the caller's whole environment
    cwd: str | None = None  # -w, a guest path; None: the caller's (see working_directory)
    volumes: tuple[Volume, ...] = field(default_factory=tuple)
    tmpfs: tuple[Tmpfs, ...] = ()  # --tmpfs, each counted in scratch_bound
    limits: Limits = field(default_factory=Limits)
    user: str | None = None  # --user UID[:GID] or NAME[:GROUP], names from the rootfs
    group_add: tuple[str, ...] = ()
    network: str = "sandbox"  # sandbox, none or host (sentry/net)
    publish: tuple[Port, ...] = ()  # -p: host ports carried to guest listeners
    scratch_size: int | None = None  # --scratch-size in bytes; None: scratch_bound's default
    preserve_fds: int = 0  # --preserve-fds: the caller's fds 3..3+N-1 reach the guest
    cap_add: tuple[str, ...] = ()  # --cap-add NAME (as capabilities(7), CAP_ optional)
    cap_drop: tuple[str, ...] = ()  # --cap-drop NAME, or ALL
    # The OCI front end's (oci/): the capabilities asked for, single files bound, the spec's
    # seccomp program, the start gate that holds the guest before its filter until `start`,
    # and that the Sentry's network namespace is the container's (the holder's), not the
    # host's.
    spec_capabilities: frozenset[int] | None = None
    files: tuple[tuple[str, bytes, bool, int], ...] = ()  # RootfsSpec.files
    seccomp: bytes | None = None
    hold: object | None = None
    container_netns: bool = False

    def validate(self, table) -> None:
        if not self.argv:
            raise ConfigError("missing command: edgevisor do [flags] -- CMD [ARGS...]")
        if self.platform not in PLATFORM_NAMES:
            raise ConfigError(f"platform {self.platform!r}: expected one of "
                              f"{', '.join(PLATFORM_NAMES)}")
        if not os.path.isdir(self.rootfs):
            raise ConfigError(f"rootfs {self.rootfs!r} is not a directory")
        if not self.hostname or len(self.hostname.encode()) > 64:
            raise ConfigError(f"hostname {self.hostname!r} must be 1 to 64 bytes")
        if self.cwd is not None and not self.cwd.startswith("/"):
            raise ConfigError(f"-w {self.cwd!r}: must be an absolute path")
        for v in self.volumes:
            if not (os.path.isdir(v.source) or os.path.isfile(v.source)):
                raise ConfigError(f"-v: {v.source!r} is not a directory or a regular file")
        targets = set()
        for flag, target in [*(("-v", v.target) for v in self.volumes),
                             *(("--tmpfs", t.target) for t in self.tmpfs)]:
            if not target.startswith("/") or target.rstrip("/") in ("", "/proc", "/dev"):
                raise ConfigError(f"{flag}: {target!r} must be an absolute path other than "
                                  "/, /proc and /dev")
            if target in targets:
                raise ConfigError(f"{flag}: {target!r} is mounted twice")
            targets.add(target)
        if self.network not in NETWORK_MODES:
            raise ConfigError(f"--network {self.network!r}: expected one of "
                              f"{', '.join(NETWORK_MODES)}")
        if self.publish and self.network != "sandbox":
            raise ConfigError(f"-p: ports are published with --network=sandbox only, not "
                              f"{self.network}")
        if not 0 <= self.preserve_fds <= os.sysconf("SC_OPEN_MAX") - 3:
            raise ConfigError(f"--preserve-fds {self.preserve_fds}: must be between 0 and the "
                              "descriptor limit less 3")
        for fd in range(3, 3 + self.preserve_fds):
            try:
                os.fstat(fd)
            except OSError:
                raise ConfigError(f"--preserve-fds {self.preserve_fds}: descriptor {fd} is "
                                  "not open") from None
        limits = self.limits
        if limits.pids is not None and limits.pids < 1:
            raise ConfigError(f"--pids-limit {limits.pids}: must be at least 1")
        if limits.memory is not None and limits.memory < MIN_SIZE:
            raise ConfigError(f"--memory {format_size(limits.memory)}: must be at least 1m")
        if self.scratch_size is not None:
            if self.scratch_size < MIN_SIZE:
                raise ConfigError(f"--scratch-size {format_size(self.scratch_size)}: must be at "
                                  "least 1m")
            if limits.memory is not None and self.scratch_size > limits.memory:
                raise ConfigError(f"--scratch-size {format_size(self.scratch_size)}: must not be "
                                  f"more than --memory {format_size(limits.memory)}")
        reserved = sum(t.size for t in self.tmpfs if t.size)
        if reserved and reserved > self.scratch_bound() - MIN_SIZE:
            raise ConfigError(f"--tmpfs: sizes of {format_size(reserved)} leave less than 1m "
                              f"of the scratch's {format_size(self.scratch_bound())} "
                              "(--scratch-size)")
        if limits.cpus is not None and not 0.01 <= limits.cpus <= os.cpu_count():
            raise ConfigError(f"--cpus {limits.cpus}: must be between 0.01 and {os.cpu_count()}")
        self.identity()  # a user or group that cannot be found is a ConfigError now
        self.capabilities()  # an unknown or refused capability is a ConfigError now
        if self.strace_syscalls is not None:
            unknown = sorted(n for n in self.strace_syscalls if n not in table.by_name)
            if unknown:
                raise ConfigError(f"--strace-syscalls: unknown syscall(s): {', '.join(unknown)}")

    def working_directory(self) -> str:
        """Where the guest starts: -w, else the caller's own directory wherever the guest
        sees that very directory at the same path (the host's root, or a volume mounted
        at it). Another rootfs is another tree: there the guest starts in /, as a
        container does. Over the host's root, a directory the guest cannot see (under its
        own /tmp, say) is an error rather than a silent start somewhere else."""
        if self.cwd is not None:
            return self.cwd
        try:
            here = os.getcwd()
        except FileNotFoundError:
            raise SetupError("the working directory no longer exists: choose one with "
                             "-w DIR") from None
        source = self._host_directory(here)
        if source is not None and os.path.isdir(source) and os.path.samefile(source, here):
            return here
        if os.path.realpath(self.rootfs) != "/":
            return "/"
        raise SetupError(f"the working directory {here} is not visible in the sandbox: "
                         f"mount it with -v {here}:{here}, or choose one with -w DIR")

    def _host_directory(self, guest: str) -> str | None:
        """The host directory the guest sees at the absolute path `guest`, or None where it
        sees one of the sandbox's own (/tmp, /dev, /proc, /sys, a --tmpfs)."""
        mounts = [*((m, None) for m in _OWN_MOUNTS), *((t.target, None) for t in self.tmpfs),
                  *((v.target, v.source) for v in self.volumes)]
        best, source = "/", self.rootfs
        for target, host in mounts:
            if (guest == target or guest.startswith(target + "/")) and len(target) >= len(best):
                best, source = target, host
        if source is None:
            return None
        return os.path.join(source, os.path.relpath(guest, best))

    def capabilities(self) -> frozenset[int]:
        """The command's capabilities (a root command's; a --user one has none): the
        default set, less --cap-drop (ALL: every one), plus --cap-add, which gives back only
        capabilities of the default set (isolation.KEPT_CAPABILITIES says why)."""
        everything = {n for n in self.cap_drop if n.upper() == "ALL"}
        dropped = {_capability(n, "--cap-drop") for n in set(self.cap_drop) - everything}
        caps = set() if everything else set(KEPT_CAPABILITIES) - dropped
        for name in self.cap_add:
            cap = _capability(name, "--cap-add")
            if cap not in KEPT_CAPABILITIES:
                raise ConfigError(f"--cap-add {name}: refused: beyond the default set every "
                                  "capability reaches past the sandbox (see docs/security.md)")
            caps.add(cap)
        return frozenset(caps)

    def scratch_bound(self) -> int:
        """The bytes all in-memory file systems of the sandbox may hold together, in pages."""
        page = os.sysconf("SC_PAGE_SIZE")
        if self.scratch_size is not None:
            size = self.scratch_size
        else:
            size = min(DEFAULT_SCRATCH_SIZE, os.sysconf("SC_PHYS_PAGES") * page // 4)
            if self.limits.memory is not None:
                size = min(size, self.limits.memory)
        return -(-size // page) * page

    def identity(self) -> tuple[int, int, tuple[int, ...]] | None:
        """(uid, gid, supplementary groups) the command runs as, or None for root with the
        capabilities it is given. Names are looked up in the rootfs's /etc/passwd and
        /etc/group, as docker run --user does; a uid without a passwd entry gets gid 0."""
        if self.user is None and not self.group_add:
            return None
        users = _database(os.path.join(self.rootfs, "etc/passwd"))
        groups = _database(os.path.join(self.rootfs, "etc/group"))
        user, _, group = (self.user or "0").partition(":")
        if user.isdigit():
            uid = int(user)
            entry = next((e for e in users.values() if int(e[2]) == uid), None)
        elif user in users:
            entry = users[user]
            uid = int(entry[2])
        else:
            raise ConfigError(f"--user: no user {user!r} in the rootfs's /etc/passwd")
        gid = int(entry[3]) if entry is not None and entry[3:4] != [""] and len(entry) > 3 else 0
        if group:
            gid = _group_id(group, groups, "--user")
        extra = tuple(_group_id(g, groups, "--group-add") for g in self.group_add)
        if os.geteuid() != 0 and (uid, gid) != (os.geteuid(), os.getegid()):
            raise ConfigError("--user: without root only your own uid and gid exist in the "
                              "sandbox")
        return uid, gid, extra


def format_size(n: int) -> str:
    """Bytes as the flags take them: 512m, 2g, 1536k, 1000."""
    for unit, scale in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if n and n % scale == 0:
            return f"{n // scale}{unit}"
    return str(n)


def oom_report(memory: int, kills: int, code: int) -> str:
    """The line saying that the memory limit's OOM killer killed `kills` tasks of a sandbox
    whose command ended with `code` (128+N for death by signal N), as docker reports
    OOMKilled: the command itself when it died of SIGKILL, whoever the kernel chose."""
    what = "the command" if code == 128 + signal.SIGKILL else (
        f"{kills} process{'es' if kills > 1 else ''} of the sandbox")
    return f"edgevisor: the memory limit (--memory {format_size(memory)}) killed {what}"


def _capability(name: str, flag: str) -> int:
    bare = name.upper().removeprefix("CAP_")
    if bare not in abi.CAPABILITY_NAMES:
        raise ConfigError(f"{flag} {name}: no such capability")
    return abi.CAPABILITY_NAMES.index(bare)


def _database(path: str) -> dict[str, list[str]]:
    """name -> the colon-separated fields of /etc/passwd or /etc/group."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            rows = [line.rstrip("\n").split(":") for line in f if ":" in line]
    except OSError:
        return {}
    return {row[0]: row for row in rows if len(row) > 2 and row[2].isdigit()}


def _group_id(group: str, groups: dict[str, list[str]], flag: str) -> int:
    if group.isdigit():
        return int(group)
    if group not in groups:
        raise ConfigError(f"{flag}: no group {group!r} in the rootfs's /etc/group")
    return int(groups[group][2])
