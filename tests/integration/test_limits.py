"""--pids-limit, --memory and --cpus, through a cgroup of the sandbox's own."""

import glob
import os
import signal
import subprocess
import time
import uuid

import pytest

from ..support import EDGEVISOR

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="makes cgroups")


def _leftovers():
    return glob.glob("/sys/fs/cgroup/*/edgevisor-*") + glob.glob("/sys/fs/cgroup/edgevisor-*")


def _marked(marker: str) -> list[int]:
    """The guest's processes carrying `marker` (not edgevisor's, whose argv has it too)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            if marker.encode() in cmdline and b"edgevisor.cli" not in cmdline:
                found.append(int(pid))
        except OSError:
            pass
    return found


def test_pids_limit_refuses_forks_beyond_it(sandbox):
    before = _leftovers()
    r = sandbox("sh", "-c", "n=0; for i in $(seq 40); do sleep 3 & n=$((n+1)); done 2>/dev/null;"
                " echo started; wait", flags=("--pids-limit", "10"))
    assert "Cannot fork" in r.stderr or r.returncode != 0, (r.stdout, r.stderr)
    assert set(_leftovers()) <= set(before)  # its own removed (older ones may be swept)


def test_a_fork_bomb_is_contained_and_edgevisor_still_exits_when_told(platform):
    marker = f"edgevisor-bomb-{uuid.uuid4().hex}"
    bomb = ("import os, time\n"
            "print('ready', flush=True)\n"
            "while True:\n"
            "    try:\n"
            "        os.fork()\n"
            "    except OSError:\n"
            "        time.sleep(0.01)\n")
    p = subprocess.Popen([*EDGEVISOR, "do", f"--platform={platform}", "--pids-limit", "64",
                          "--", "python3", "-c", bomb, marker], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        time.sleep(2)
        assert 1 < len(_marked(marker)) <= 64
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    finally:
        p.kill()
        p.wait()
    deadline = time.monotonic() + 10
    while _marked(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _marked(marker) == []
    assert not [d for d in _leftovers() if f"edgevisor-{p.pid}-" in d]


HOG = "b = bytearray(400 << 20); b[::4096] = b'x' * len(b[::4096]); print('survived')"


def test_memory_limit_stops_a_hog_and_says_so(sandbox):
    """137, and one line naming the memory limit, as docker reports OOMKilled."""
    r = sandbox("python3", "-c", HOG, flags=("--memory", "64m"))
    assert r.returncode == 137 and "survived" not in r.stdout, (r.returncode, r.stderr)
    assert r.stderr == "edgevisor: the memory limit (--memory 64m) killed the command\n"


def test_memory_limit_killing_a_child_is_reported_too(sandbox):
    r = sandbox("sh", "-c", f'python3 -c "{HOG}"; echo "child $?"',
                flags=("--memory", "64m"))
    assert (r.returncode, r.stdout) == (0, "child 137\n"), r.stderr
    assert r.stderr.splitlines()[-1] == ("edgevisor: the memory limit (--memory 64m) killed 1 "
                                         "process of the sandbox")


def test_cpus_sets_the_quota(sandbox):
    p = subprocess.Popen([*EDGEVISOR, "do", "--cpus", "0.5", "--", "sleep", "3"])
    try:
        deadline = time.monotonic() + 10
        mine = f"edgevisor-{p.pid}-"
        while not (found := [d for d in _leftovers() if mine in d]) and time.monotonic() < deadline:
            time.sleep(0.05)
        quotas = [open(f"{d}/cpu.cfs_quota_us").read().strip() for d in found
                  if os.path.exists(f"{d}/cpu.cfs_quota_us")]
        quotas += [open(f"{d}/cpu.max").read().split()[0] for d in found
                   if os.path.exists(f"{d}/cpu.max")]
        assert quotas == ["50000"]
    finally:
        p.wait(timeout=30)
    assert not [d for d in _leftovers() if f"edgevisor-{p.pid}-" in d]


@pytest.mark.parametrize("flag, value, message", [
    ("--pids-limit", "0", "--pids-limit 0: must be at least 1"),
    ("--memory", "lots", "--memory 'lots': expected a size such as 512m or 2g"),
    ("--cpus", "0", "--cpus 0.0: must be between"),
])
def test_bad_limits_are_one_line(flag, value, message):
    r = subprocess.run([*EDGEVISOR, "do", flag, value, "--", "true"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
