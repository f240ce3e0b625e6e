"""list, ps, events, pause, resume and update: looking at and adjusting a container."""

import json
import os
import pwd
import subprocess
import sys
import time

from . import OCIError, cgroup, client, state


def list_containers(g, fmt: str, quiet: bool) -> int:
    rows = [state.load(g.root, i) for i in state.ids(g.root)]
    if quiet:
        for r in rows:
            print(r.id)
    elif fmt == "json":
        print(json.dumps([r.oci() for r in rows]))
    else:
        lines = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        for r in rows:
            o = r.oci()
            lines.append((r.id, str(o["pid"]), o["status"], r.bundle, r.created,
                          pwd.getpwuid(os.geteuid()).pw_name))
        widths = [max(len(line[i]) for line in lines) for i in range(6)]
        for line in lines:
            print("   ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())
    return 0


def _running(g, container_id: str) -> state.State:
    current = state.load(g.root, container_id)
    if current.current_status() == "stopped":
        raise OCIError("container not running")
    return current


def ps(g, container_id: str, fmt: str, ps_args: list[str]) -> int:
    _running(g, container_id)
    pids = client.request(state.socket_path(g.root, container_id), op="pids")["pids"]
    if fmt == "json":
        print(json.dumps(pids))
        return 0
    out = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True)
    if out.returncode != 0:
        raise OCIError(f"ps: {out.stderr.strip()}")
    lines = out.stdout.splitlines()
    column = lines[0].split().index("PID") if lines and "PID" in lines[0].split() else None
    if column is None:
        raise OCIError("ps: no PID column in its output")
    print(lines[0])
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > column and fields[column].isdigit() and int(fields[column]) in pids:
            print(line)
    return 0


def events(g, container_id: str, stats: bool, interval: float) -> int:
    while True:
        current = _running(g, container_id)
        event = {"type": "stats", "id": container_id, "data": cgroup.stats(current.cgroups)}
        print(json.dumps(event), flush=True)
        if stats:
            return 0
        time.sleep(interval)


def pause(g, container_id: str) -> int:
    current = _running(g, container_id)
    if current.current_status() != "running":
        raise OCIError("container not running")
    cgroup.freeze(_freezer(current), True)
    return 0


def resume(g, container_id: str) -> int:
    current = _running(g, container_id)
    if current.current_status() != "paused":
        raise OCIError("container not paused")
    cgroup.freeze(_freezer(current), False)
    return 0


def _freezer(current: state.State) -> str:
    if not current.freezer:
        raise OCIError("the container has no freezer cgroup")
    return current.freezer


def update(g, container_id: str, resources_file: str | None, flags: dict) -> int:
    current = _running(g, container_id)
    resources = {}
    if resources_file:
        try:
            if resources_file == "-":
                resources = json.load(sys.stdin)
            else:
                with open(resources_file) as f:
                    resources = json.load(f)
        except (OSError, ValueError) as e:
            raise OCIError(f"--resources: {e}") from None
        if not isinstance(resources, dict):
            raise OCIError("--resources: not a JSON object")
    for (section, key), value in flags.items():
        if value is not None:
            resources.setdefault(section, {})[key] = value
    cgroup.check(resources)
    try:
        cgroup.update(current.cgroups, resources, current.own_tasks)
    except OSError as e:
        raise OCIError(f"update: {e.strerror}: {e.filename}") from None
    return 0
