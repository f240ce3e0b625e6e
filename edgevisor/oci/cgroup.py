"""The container's cgroup at linux.cgroupsPath, where `docker stats` reads it.

The holder joins it before it forks the Sentry, so the Sentry, the gofer and every guest
task are inside and the limits count them all (the pids limit gets room for edgevisor's own
tasks, as `do --pids-limit` does). With --systemd-cgroup the path is runc's
`slice:prefix:name` form; edgevisor makes the directories itself (no systemd unit), at the
place systemd would.
"""

import os
import time

from . import OCIError
from ..platform.cgroups import ROOT, remove

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
    """Stop (or let go on) every task of the container: the holder, Sentry, gofer, guest."""
    if os.path.exists(os.path.join(d, "freezer.state")):
        with open(os.path.join(d, "freezer.state"), "w") as f:
            f.write("FROZEN" if frozen else "THAWED")
        _settle(d, "FROZEN" if frozen else "THAWED")
    else:
        with open(os.path.join(d, "cgroup.freeze"), "w") as f:
            f.write("1" if frozen else "0")


def _settle(d: str, wanted: str) -> None:
    """Freezing is asynchronous in v1: FREEZING until every task has stopped."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(os.path.join(d, "freezer.state")) as f:
            if f.read().strip() == wanted:
                return
        time.sleep(0.01)
    raise OCIError(f"the container's cgroup did not reach {wanted}")


def freezer(dirs: list[str]) -> str | None:
    return next((d for d in dirs if os.path.exists(os.path.join(d, "freezer.state"))
                 or os.path.exists(os.path.join(d, "cgroup.freeze"))), None)


def processes(dirs: list[str]) -> list[int]:
    for d in dirs:
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                return [int(line) for line in f if line.strip()]
        except OSError:
            continue
    return []


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

