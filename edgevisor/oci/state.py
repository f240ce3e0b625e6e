"""A container's state directory under --root: state.json and the control socket.

state.json holds the OCI state (ociVersion, id, status, pid, bundle, annotations, created)
and what `delete` needs to clean up after a holder that died (the cgroup directories, the
poststop hooks). Its status is what the last command set (created or running); the status
reported is derived from it and the host: `stopped` once the holder is gone (so it stays
right when the Sentry dies), `paused` while the freezer holds the cgroup.
"""

import json
import os
import re
import time

from . import OCIError
from .client import SOCKET_NAME
from .procs import start_time

OCI_VERSION = "1.0.2-dev"  # runc 1.1's
STATE_NAME = "state.json"
_ID = re.compile(r"^[\w+.-]+$")  # runc's own rule


class State:
    """What state.json holds. A plain class, not a dataclass: `start`, `kill` and `delete`
    load it, and dataclasses (with inspect) would be a third of what they import."""

    def __init__(self, id: str, pid: int, bundle: str, rootfs: str, status: str = "created",
                 created: str = "", annotations: dict | None = None, start_time: int = 0,
                 cgroups: list | None = None, freezer: str | None = None,
                 hooks: dict | None = None, own_tasks: int = 0, owner: str = ""):
        self.id, self.pid, self.bundle, self.rootfs = id, pid, bundle, rootfs
        self.status, self.created = status, created
        self.annotations = annotations if annotations is not None else {}
        self.start_time = start_time  # the holder's, from /proc: the pid stays its own
        self.cgroups = cgroups if cgroups is not None else []
        self.freezer = freezer
        self.hooks = hooks if hooks is not None else {}
        self.own_tasks = own_tasks  # edgevisor's tasks in the cgroup, room in a pids limit
        self.owner = owner

    def current_status(self) -> str:
        if self.status == "stopped" or start_time(self.pid) != self.start_time:
            return "stopped"
        if self.freezer and _frozen(self.freezer):
            return "paused"
        return self.status

    def oci(self) -> dict:
        """The state as runc prints it, and as hooks get it on stdin."""
        status = self.current_status()
        out = {"ociVersion": OCI_VERSION, "id": self.id,
               "pid": 0 if status == "stopped" else self.pid, "status": status,
               "bundle": self.bundle, "rootfs": self.rootfs, "created": self.created,
               "owner": self.owner}
        if self.annotations:
            out["annotations"] = self.annotations
        return out


def _frozen(freezer: str) -> bool:
    try:
        with open(os.path.join(freezer, "freezer.state")) as f:
            return f.read().strip() == "FROZEN"
    except FileNotFoundError:
        pass
    try:
        with open(os.path.join(freezer, "cgroup.freeze")) as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def check_id(container_id: str) -> None:
    if not _ID.fullmatch(container_id) or container_id in (".", ".."):
        raise OCIError(f"invalid container id format: {container_id}")


def directory(root: str, container_id: str) -> str:
    check_id(container_id)
    return os.path.join(root, container_id)


def socket_path(root: str, container_id: str) -> str:
    return os.path.join(directory(root, container_id), SOCKET_NAME)


def make(root: str, container_id: str) -> str:
    """The new container's directory; OCIError if the id is taken."""
    os.makedirs(root, mode=0o700, exist_ok=True)
    os.chmod(root, 0o700)
    path = directory(root, container_id)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        raise OCIError(f"container with id exists: {container_id}") from None
    return path


def save(root: str, state: State) -> None:
    path = os.path.join(directory(root, state.id), STATE_NAME)
    with open(path + ".new", "w") as f:
        json.dump(vars(state), f)
    os.replace(path + ".new", path)


def load(root: str, container_id: str) -> State:
    path = os.path.join(directory(root, container_id), STATE_NAME)
    try:
        with open(path) as f:
            return State(**json.load(f))
    except FileNotFoundError:
        raise OCIError(f"container does not exist: {container_id}") from None
    except (ValueError, TypeError):
        raise OCIError(f"container {container_id}: unreadable state") from None


def ids(root: str) -> list[str]:
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    return [n for n in names if os.path.exists(os.path.join(root, n, STATE_NAME))]


def remove(root: str, container_id: str) -> None:
    """The container's directory: its files and the tmpfs mount points (empty outside the
    holder's mount namespace). Not shutil.rmtree: its import is a sixth of `delete`'s."""
    path = directory(root, container_id)
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                os.rmdir(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def now() -> str:
    """RFC 3339 with nanoseconds, as Go prints a time.Time."""
    t = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 10**9)) + f".{t % 10**9:09d}Z"
