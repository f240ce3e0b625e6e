"""start, kill, delete and state: what runc's commands do to a container that exists.

Light on purpose (the state directory and the control socket's client, no Sentry): docker
calls the runtime for each of them, and each call's start-up is the user's wait.
"""

import json
import os
import sys
import time

from . import OCIError, cgroup, client, hooks, state
from .procs import start_time


def parse_signal(text: str) -> int:
    """A signal as runc names it: `kill ID TERM` as well as `kill ID 15`."""
    import signal  # here: start and delete have no use for its enums

    if text.isdigit():
        number = int(text)
        if 0 < number < signal.SIGRTMAX + 1:
            return number
    else:
        name = text.upper()
        name = name if name.startswith("SIG") else f"SIG{name}"
        if name in signal.Signals.__members__:
            return signal.Signals[name].value
    raise OCIError(f"unknown signal {text!r}")


def start(g, container_id: str) -> int:
    current = state.load(g.root, container_id)
    status = current.current_status()
    if status != "created":
        raise OCIError({"stopped": "cannot start a container that has stopped",
                        "running": "cannot start an already running container"}.get(
                            status, f"cannot start a container in the {status} state"))
    client.request(state.socket_path(g.root, container_id), op="start")
    current.status = "running"
    state.save(g.root, current)
    hooks.run(current.hooks, "poststart", current.oci())
    return 0


def show_state(g, container_id: str) -> int:
    print(json.dumps(state.load(g.root, container_id).oci(), indent=2))
    return 0


def kill(g, container_id: str, sig: int, everyone: bool) -> int:
    current = state.load(g.root, container_id)
    if current.current_status() == "stopped":
        raise OCIError("container not running")
    client.request(state.socket_path(g.root, container_id), op="kill", signal=sig,
                    all=everyone)
    return 0


def delete(g, container_id: str, force: bool) -> int:
    try:
        current = state.load(g.root, container_id)
    except OCIError:
        if force:  # as runc: nothing to delete is not an error when forced
            state.remove(g.root, container_id)
            return 0
        raise
    status = current.current_status()
    if status in ("running", "paused") and not force:
        raise OCIError(f"cannot delete container {container_id} that is not stopped: {status}")
    if status != "stopped":
        _destroy(current)
    cgroup.remove(current.cgroups)
    state.remove(g.root, container_id)
    try:
        hooks.run(current.hooks, "poststop", current.oci())
    except OCIError as e:  # as runc: the container is gone; a poststop failure is a warning
        print(f"edgevisor: warning: {e}", file=sys.stderr)
    return 0


def _destroy(current: state.State) -> None:
    """Kill every task of the container: the holder first (the Sentry and guest die with
    it), then whatever is left in its cgroup, which may be frozen."""
    from signal import SIGKILL  # here, as in parse_signal: start and delete need none

    try:
        os.kill(current.pid, SIGKILL)
    except ProcessLookupError:
        pass
    cgroup.kill_all(current.cgroups)
    if current.freezer:
        cgroup.freeze(current.freezer, False)
    deadline = time.monotonic() + 10
    while start_time(current.pid) == current.start_time and time.monotonic() < deadline:
        time.sleep(0.01)
