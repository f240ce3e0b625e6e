"""The container's cgroup at linux.cgroupsPath, where `docker stats` reads it.

The holder joins it before it forks the Sentry, so the Sentry, the gofer and every guest
task are inside and the limits count them all (the pids limit gets room for edgevisor's own
tasks, as `do --pids-limit` does). With --systemd-cgroup the path is runc's
`slice:prefix:name` form; edgevisor makes the directories itself (no systemd unit), at the
place systemd would.

`pause` freezes the guest's tasks before edgevisor's own. Frozen all at once, a guest thread
waiting for the Sentry's answer (a killable wait, which the freezer cannot stop) would wait
for a Sentry frozen already, and the cgroup would never be frozen. So the guest's tasks live
in a child of the freezer's cgroup (GUEST, which the Sentry moves the guest into as it forks
it): frozen first, while the Sentry answers what is in flight, then the rest.
"""

import os
import time

from . import OCIError
from ..platform import cgroups as _cgroups

ROOT = _cgroups.ROOT

GUEST = "guest"  # the freezer cgroup's child that holds the guest's tasks

_V1 = ("cpu", "cpuacct", "memory", "pids", "freezer", "blkio")  # what stats and pause read
_PERIOD = 100_000


def path_of(cgroups_path: str, systemd: bool, container_id: str) -> str:
    """The cgroup path, from the hierarchy's root."""
    if systemd:
        parts = (cgroups_path or f"system.slice:edgevisor:{container_id}").split(":")
        if len(parts) != 3:
            raise OCIError(f"expected cgroupsPath to be of format \"slice:prefix:name\" for "
                           f"systemd cgroups, got \"{cgroups_path}\" instead")
        slice_, prefix, name = parts
        if any("/" in p or p in (".", "..") for p in parts):
            raise OCIError(f"cgroupsPath \"{cgroups_path}\": a part names a path")
        slice_ = slice_ or "system.slice"
        # systemd nests a-b.slice inside a.slice
        words = slice_.removesuffix(".slice").split("-")
        nested = ["-".join(words[:i + 1]) + ".slice" for i in range(len(words))]
        if slice_ == "-.slice":
            nested = []
        leaf = f"{prefix}-{name}.scope" if prefix else name
        return "/" + "/".join([*nested, leaf])
    if not cgroups_path:
        return f"/edgevisor/{container_id}"
    return os.path.normpath("/" + cgroups_path.lstrip("/"))  # never above the root


def directories(path: str) -> list[str]:
    if os.path.exists(f"{ROOT}/cgroup.controllers"):
        return [ROOT + path]
    return [f"{ROOT}/{c}{path}" for c in _V1 if os.path.isdir(f"{ROOT}/{c}")]


def create(dirs: list[str], resources: dict, own_tasks: int) -> None:
    made = []
    try:
        for d in dirs:
            if not os.path.isdir(d):
                os.makedirs(d)
                made.append(d)
        update(dirs, resources, own_tasks)
    except OSError as e:
        remove(made)
        raise OCIError(f"cgroup {e.filename or ''}: {e.strerror}") from None


def update(dirs: list[str], resources: dict, own_tasks: int) -> None:
    """Write linux.resources (or `update --resources`) to the cgroup."""
    for name, value in _settings(resources, own_tasks):
        for d in dirs:
            if os.path.exists(os.path.join(d, name)):
                with open(os.path.join(d, name), "w") as f:
                    f.write(value)


def _settings(resources: dict, own_tasks: int):
    v2 = os.path.exists(f"{ROOT}/cgroup.controllers")
    memory = resources.get("memory") or {}
    if memory.get("limit"):
        limit = memory["limit"]
        yield ("memory.max", "max" if limit < 0 else str(limit)) if v2 else \
              ("memory.limit_in_bytes", str(limit))
    if memory.get("reservation"):
        yield ("memory.low" if v2 else "memory.soft_limit_in_bytes"), str(memory["reservation"])
    if memory.get("swap") and not v2:
        yield "memory.memsw.limit_in_bytes", str(memory["swap"])
    cpu = resources.get("cpu") or {}
    if cpu.get("shares"):
        yield ("cpu.weight", str(1 + ((cpu["shares"] - 2) * 9999) // 262142)) if v2 else \
              ("cpu.shares", str(cpu["shares"]))
    if cpu.get("quota") or cpu.get("period"):
        period = cpu.get("period") or _PERIOD
        quota = cpu.get("quota") or -1
        if v2:
            yield "cpu.max", f"{'max' if quota < 0 else quota} {period}"
        else:
            yield "cpu.cfs_period_us", str(period)
            yield "cpu.cfs_quota_us", str(quota)
    pids = (resources.get("pids") or {}).get("limit")
    if pids:
        yield "pids.max", "max" if pids < 0 else str(pids + own_tasks)


def check(resources: dict) -> None:
    """What edgevisor cannot apply is an error, not ignored."""
    cpu = resources.get("cpu") or {}
    for key in ("cpus", "mems", "realtimeRuntime", "realtimePeriod"):
        if cpu.get(key):
            raise OCIError(f"linux.resources.cpu.{key} is not supported by edgevisor")
    block = resources.get("blockIO") or {}
    if any(v for k, v in block.items()):
        raise OCIError("linux.resources.blockIO is not supported by edgevisor")
    for key in ("hugepageLimits", "rdma", "unified"):
        if resources.get(key):
            raise OCIError(f"linux.resources.{key} is not supported by edgevisor")
    net = resources.get("network") or {}
    if any(net.values()):
        raise OCIError("linux.resources.network is not supported by edgevisor")


def freeze(d: str, frozen: bool) -> None:
    """Stop (or let go on) every task of the container: the guest's first, then the holder,
    Sentry and gofer (thawed in the other order). A freeze that does not complete is undone:
    a container left half frozen could not even be killed through its holder."""
    guest = os.path.join(d, GUEST)
    levels = [level for level in (guest, d) if os.path.isdir(level)]
    if not frozen:
        for level in reversed(levels):
            _set_frozen(level, False)
        return
    try:
        for level in levels:
            _set_frozen(level, True)
    except BaseException:
        for level in reversed(levels):
            try:
                _set_frozen(level, False)
            except OSError:
                pass
        raise


def make_guest_cgroup(d: str) -> str:
    """The child of the freezer's cgroup `d` that the guest's tasks go into."""
    guest = os.path.join(d, GUEST)
    os.makedirs(guest, exist_ok=True)
    return guest


def _set_frozen(d: str, frozen: bool) -> None:
    """Freezing is asynchronous: v1's state is FREEZING, v2's events say `frozen 0`, until
    every task has stopped."""
    v1 = os.path.exists(os.path.join(d, "freezer.state"))
    name, value = ("freezer.state", "FROZEN" if frozen else "THAWED") if v1 else \
        ("cgroup.freeze", "1" if frozen else "0")
    with open(os.path.join(d, name), "w") as f:
        f.write(value)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if v1:
            with open(os.path.join(d, "freezer.state")) as f:
                if f.read().strip() == value:
                    return
        else:
            with open(os.path.join(d, "cgroup.events")) as f:
                if f"frozen {value}" in f.read().splitlines():
                    return
        time.sleep(0.01)
    raise OCIError(f"the container's cgroup did not reach {'FROZEN' if frozen else 'THAWED'}")


def remove(dirs: list[str]) -> None:
    """The container's cgroups, the guest's child of the freezer's first."""
    _cgroups.remove([*(os.path.join(d, GUEST) for d in dirs), *dirs])


def freezer(dirs: list[str]) -> str | None:
    return next((d for d in dirs if os.path.exists(os.path.join(d, "freezer.state"))
                 or os.path.exists(os.path.join(d, "cgroup.freeze"))), None)


def processes(dirs: list[str]) -> list[int]:
    """Every task of the container (the guest's, in GUEST, as well)."""
    for d in dirs:
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                found = [int(line) for line in f if line.strip()]
        except OSError:
            continue
        try:
            with open(os.path.join(d, GUEST, "cgroup.procs")) as f:
                found += [int(line) for line in f if line.strip()]
        except OSError:
            pass
        return found
    return []


def kill_all(dirs: list[str]) -> None:
    """SIGKILL every task of the container's cgroup (frozen ones die once thawed)."""
    from signal import SIGKILL  # here: the light commands that import this kill nothing

    for pid in processes(dirs):
        try:
            os.kill(pid, SIGKILL)
        except ProcessLookupError:
            pass


def stats(dirs: list[str]) -> dict:
    """runc events --stats's data: cpu, memory and pids, as far as the cgroup has them."""
    def read(name: str) -> int | None:
        for d in dirs:
            try:
                with open(os.path.join(d, name)) as f:
                    return int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                continue
        return None

    usage = read("cpuacct.usage")
    memory = read("memory.usage_in_bytes") or read("memory.current")
    limit = read("memory.limit_in_bytes")
    return {"cpu": {"usage": {"total": usage or 0}},
            "memory": {"usage": {"usage": memory or 0, "limit": limit or 0}},
            "pids": {"current": read("pids.current") or 0,
                     "limit": read("pids.max") or 0}}

