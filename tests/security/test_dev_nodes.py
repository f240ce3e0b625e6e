"""The guest's /dev holds the sandbox's own device nodes: a root guest that changes them (owner,
mode, times, xattrs; by path, through O_PATH and open descriptors, with AT_EMPTY_PATH and
/proc/self/fd/N), unlinks, renames or replaces them changes nothing of the host's /dev.

The attack is tests/security/dev_attack.py, run in the sandbox. Whatever a failing run did to
the host's nodes is put back afterwards, so that a regression does not break the machine."""

import os
import stat
from pathlib import Path

import pytest

from edgevisor.platform.isolation import DEVICES

HERE = Path(__file__).parent
ATTACK = (HERE / "dev_attack.py").read_text()
# The attack imports this checkout's edgevisor. The guest gets it through a read-only volume:
# a checkout under the host's /tmp is not in its view (its /tmp is the sandbox's own).
SOURCE = str(HERE.parents[1])
GUEST_SOURCE = "/edgevisor-source"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([SOURCE, GUEST_SOURCE])}
FLAGS = ("-v", f"{SOURCE}:{GUEST_SOURCE}:ro")
NAMES = [n for n in DEVICES if os.path.exists(f"/dev/{n}")]
WHEN_NS = 981158400 * 10**9  # dev_attack.WHEN
LEFTOVERS = [f"/dev/{n}{suffix}" for n in NAMES for suffix in (".link", ".moved", ".node")] + [
    "/dev/replacement"]


def host_devices() -> dict:
    """Everything the guest might change of the host's nodes: the full stat and the xattrs."""
    state = {}
    for name in NAMES:
        path = f"/dev/{name}"
        try:
            st = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            state[name] = None
            continue
        state[name] = {
            "ino": st.st_ino, "dev": st.st_dev, "mode": st.st_mode, "uid": st.st_uid,
            "gid": st.st_gid, "rdev": st.st_rdev, "mtime": st.st_mtime_ns,
            "ctime": st.st_ctime_ns, "xattrs": sorted(os.listxattr(path, follow_symlinks=False)),
        }
    return state


def put_back(before: dict) -> None:
    """Undo what a failed run changed (its ctime excepted); touch nothing that is as it was."""
    now = host_devices()
    for name, was in before.items():
        path = f"/dev/{name}"
        if was is None or now[name] == was:
            continue
        if now[name] is None:
            os.mknod(path, was["mode"], was["rdev"])
        os.chown(path, was["uid"], was["gid"])
        os.chmod(path, stat.S_IMODE(was["mode"]))
        os.utime(path, ns=(os.stat(path).st_atime_ns, was["mtime"]))
        for key in set(os.listxattr(path)) - set(was["xattrs"]):
            os.removexattr(path, key)
    for path in LEFTOVERS:
        if os.path.lexists(path):
            os.unlink(path)


@pytest.fixture
def host():
    if os.geteuid() != 0:
        pytest.skip("a root guest needs edgevisor run as root")
    before = host_devices()
    yield before
    put_back(before)


def results(stdout: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in stdout.splitlines() if ": " in line)


def guest_states(stdout: str) -> dict[str, list[str]]:
    return {line.split()[1]: line.split()[2:] for line in stdout.splitlines()
            if line.startswith("state ")}


def test_changing_and_replacing_dev_nodes_leaves_the_hosts_alone(sandbox, host):
    r = sandbox("python3", "-c", ATTACK, *NAMES, env=ENV, flags=FLAGS)
    assert r.returncode == 0, r.stderr
    assert host_devices() == host
    assert [p for p in LEFTOVERS if os.path.lexists(p)] == []

    done = results(r.stdout)
    # The guest's root changed its own copies, by every route: they are its objects.
    for name in NAMES:
        for route in ("path chown", "path chmod", "path utime", "o_path fchownat",
                      "o_path fchmodat2", "o_path utimensat", "proc_fd chmod"):
            assert done[f"{name} {route}"] == "ok", (name, route, r.stdout)
        if name != "tty":
            for route in ("fd chown", "fd chmod", "fd utime", "fd fchownat", "fd fchmodat2"):
                assert done[f"{name} {route}"] == "ok", (name, route, r.stdout)
        assert guest_states(r.stdout)[name] == ["606", "4242", "4343", str(WHEN_NS)], r.stdout
        # Unlinked, renamed, replaced: in the sandbox's /dev only; no new device nodes.
        for step in ("rename", "rename_back", "rename_over", "unlink"):
            assert done[f"{name} {step}"] == "ok", (name, step, r.stdout)
        assert done[f"{name} mknod"] == "EPERM"


def test_the_guests_devices_still_work(sandbox, host):
    r = sandbox("python3", "-c", ATTACK, *NAMES, env=ENV, flags=FLAGS)
    assert r.returncode == 0, r.stderr
    done = results(r.stdout)
    works = {k.split()[1]: v for k, v in done.items() if k.startswith("works ")}
    # After their owner and mode changed: root reads and writes them still.
    assert works == {"zero": "ok", "null_write": "ok", "null_read": "ok", "urandom": "ok",
                     "random": "ok", "full_read": "ok", "full_write": "ENOSPC"}, r.stdout
    if "tty" in NAMES:
        assert done["tty open"] == "ENXIO"  # no controlling terminal, as on Linux
    assert host_devices() == host
