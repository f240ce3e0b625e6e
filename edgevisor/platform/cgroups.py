"""Resource limits for the whole sandbox through the host's cgroups (v1 or v2).

`--pids-limit`, `--memory` and `--cpus` make a cgroup of the sandbox's own, beneath the one
edgevisor runs in, in every hierarchy that has the controller: the Sentry moves itself there
before it forks anything, so the guest, the gofer and every task they make are inside. The
limits count edgevisor's own tasks too: the pids limit gets room for exactly those
(`own_tasks`: the Sentry's threads and the gofer).
Without a cgroup file system edgevisor may write (an unprivileged user, a read-only mount),
the limits are ignored with one warning line, as the issue asks.

The directories are named after the front end's pid. The front end removes them when the
sandbox is gone; a start-up sweeps the empty ones a killed front end left behind.
"""

import errno
import os
import time

ROOT = "/sys/fs/cgroup"
_PERIOD = 100_000  # µs, the CFS period the cpu quota is a share of


class Limits:
    """pids, memory (bytes) and cpus; None is no limit. Immutable. A plain class, not a
    dataclass: the OCI runtime's quick commands import this module, and dataclasses (with
    inspect) would be a third of what they import."""

    __slots__ = ("pids", "memory", "cpus")

    def __init__(self, pids: int | None = None, memory: int | None = None,
                 cpus: float | None = None):
        object.__setattr__(self, "pids", pids)
        object.__setattr__(self, "memory", memory)
        object.__setattr__(self, "cpus", cpus)

    def __setattr__(self, name, value):
        raise AttributeError(f"Limits is immutable: cannot set {name}")

    def __reduce__(self):
        return Limits, (self.pids, self.memory, self.cpus)

    def _values(self) -> tuple:
        return self.pids, self.memory, self.cpus

    def __eq__(self, other) -> bool:
        return isinstance(other, Limits) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return f"Limits(pids={self.pids!r}, memory={self.memory!r}, cpus={self.cpus!r})"

    def __bool__(self) -> bool:
        return any(v is not None for v in self._values())


class Unavailable(Exception):
    """No cgroup to use: the reason, for the warning."""


def create(limits: Limits, own_tasks: int) -> list[str]:
    """Make the sandbox's cgroup directories with the limits written, for the Sentry to
    join; Unavailable when there is nowhere to."""
    wanted = [c for c, v in (("pids", limits.pids), ("memory", limits.memory),
                             ("cpu", limits.cpus)) if v is not None]
    made = []
    try:
        for directory, version, controllers in _places(wanted):
            _sweep(os.path.dirname(directory))
            os.mkdir(directory)
            made.append(directory)
            for name, value in _settings(version, controllers, limits, own_tasks):
                with open(os.path.join(directory, name), "w") as f:
                    f.write(value)
    except OSError as e:
        remove(made)
        raise Unavailable(f"{e.strerror}: {e.filename}" if e.filename else str(e)) from None
    return made


def join(directories: list[str]) -> None:
    """Move the calling process (and so everything it will fork) into the cgroups."""
    for directory in directories:
        with open(os.path.join(directory, "cgroup.procs"), "w") as f:
            f.write("0")


def remove(directories: list[str], wait: float = 5.0) -> None:
    """Remove the cgroups once their tasks are gone (the kernel refuses a busy one)."""
    deadline = time.monotonic() + wait
    for directory in directories:
        while True:
            try:
                os.rmdir(directory)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() > deadline:
                    break
                time.sleep(0.02)


def oom_kills(directories: list[str]) -> int:
    """How many of the sandbox's tasks the kernel's OOM killer killed at the memory limit
    (v2 memory.events, v1 memory.oom_control: both count them as oom_kill)."""
    kills = 0
    for directory in directories:
        for name in ("memory.events", "memory.oom_control"):
            try:
                text = _read(os.path.join(directory, name))
            except OSError:
                continue
            for line in text.splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and value.strip().isdigit():
                    kills += int(value)
    return kills


def of_process(pid: int, front_end: int) -> list[str]:
    """The directories `create` made for the sandbox whose front end is `front_end`, found
    from the cgroups process `pid` (its Sentry) is in; [] when it made none (no limits, or
    no cgroup to use), so that nobody else's cgroup is ever taken for the sandbox's."""
    mine = f"edgevisor-{front_end}-"
    unified = os.path.exists(f"{ROOT}/cgroup.controllers")
    found = []
    for line in _read(f"/proc/{pid}/cgroup").splitlines():
        _, controllers, path = line.split(":", 2)
        if not os.path.basename(path).startswith(mine) or unified != (controllers == ""):
            continue
        for controller in controllers.split(","):
            directory = f"{ROOT}/{controller}".rstrip("/") + path
            if directory not in found and os.path.isdir(directory):
                found.append(directory)
    return found


def _places(controllers: list[str]) -> list[tuple[str, int, list[str]]]:
    """(new directory, cgroup version, its controllers) for every hierarchy needed."""
    name = f"edgevisor-{os.getpid()}-{os.urandom(3).hex()}"
    own = _own_cgroups()
    unified = ROOT if os.path.exists(f"{ROOT}/cgroup.controllers") else None
    if unified is not None:
        available = _read(f"{unified}{own.get('', '/')}/cgroup.subtree_control").split()
        missing = [c for c in controllers if c not in available]
        if missing:
            raise OSError(errno.ENOTSUP, f"cgroup controllers not delegated: {' '.join(missing)}")
        return [(f"{unified}{own.get('', '/')}".rstrip("/") + f"/{name}", 2, controllers)]
    places = []
    for controller in controllers:
        hierarchy = f"{ROOT}/{controller}"
        if not os.path.isdir(hierarchy) or controller not in own:
            raise OSError(errno.ENOTSUP, f"no cgroup v1 hierarchy for {controller}")
        places.append((f"{hierarchy}{own[controller]}".rstrip("/") + f"/{name}", 1,
                       [controller]))
    return places


def _settings(version: int, controllers: list[str], limits: Limits, own_tasks: int):
    for controller in controllers:
        if controller == "pids":
            yield "pids.max", str(limits.pids + own_tasks)
        elif controller == "memory":
            yield ("memory.max" if version == 2 else "memory.limit_in_bytes"), str(limits.memory)
        elif controller == "cpu":
            quota = max(1000, int(limits.cpus * _PERIOD))
            if version == 2:
                yield "cpu.max", f"{quota} {_PERIOD}"
            else:
                yield "cpu.cfs_period_us", str(_PERIOD)
                yield "cpu.cfs_quota_us", str(quota)


def _own_cgroups() -> dict[str, str]:
    """controller -> this process's cgroup path in that hierarchy ('' for v2)."""
    out = {}
    for line in _read("/proc/self/cgroup").splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            out[controller] = path
    return out


def _sweep(parent: str) -> None:
    """Remove empty edgevisor cgroups whose front end is gone."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        if not name.startswith("edgevisor-"):
            continue
        pid = name.split("-")[1]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            try:
                os.rmdir(os.path.join(parent, name))
            except OSError:
                pass


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()
