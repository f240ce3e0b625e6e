"""The Python API, edgevisor.run, driving real programs (busybox sh, python3, sqlite3) on both
platforms: what a grader, a CI runner or an agent tool would do with it."""

import glob
import os
import shutil
import signal
import sqlite3
import subprocess

import pytest

import edgevisor
from edgevisor import api

from ..support import edgevisor as edgevisor_cli

BUSYBOX = shutil.which("busybox")


def test_output_and_exit_status(platform):
    r = edgevisor.run(["sh", "-c", "echo out; echo err >&2; exit 3"], platform=platform,
                      capture_output=True)
    assert (r.returncode, r.stdout, r.stderr) == (3, b"out\n", b"err\n")
    assert r.args == ["sh", "-c", "echo out; echo err >&2; exit 3"]


def test_stdin_and_text(platform):
    r = edgevisor.run(["python3", "-c", "import sys; print(sys.stdin.read().upper())"],
                      platform=platform, stdin="from the caller", capture_output=True, text=True)
    assert (r.returncode, r.stdout) == (0, "FROM THE CALLER\n"), r.stderr


def test_death_by_signal_is_128_plus_n(platform):
    r = edgevisor.run(["sh", "-c", "kill -TERM $$"], platform=platform)
    assert r.returncode == 128 + signal.SIGTERM


@pytest.mark.skipif(not shutil.which("sqlite3"), reason="sqlite3 is not installed")
def test_volume_writes_land_on_the_host_and_the_overlay_does_not(platform, tmp_path):
    sql = "create table t(x); insert into t values ('from the sandbox');"
    r = edgevisor.run(["sh", "-c", f'sqlite3 /data/db "{sql}" && echo x > /etc/edgevisor-api'],
                      platform=platform, volumes=[f"{tmp_path}:/data"], capture_output=True)
    assert r.returncode == 0, r.stderr
    with sqlite3.connect(tmp_path / "db") as db:
        assert db.execute("select x from t").fetchall() == [("from the sandbox",)]
    assert not os.path.exists("/etc/edgevisor-api")


def test_read_only_volume(platform, tmp_path):
    (tmp_path / "f").write_text("host\n")
    r = edgevisor.run(["sh", "-c", "cat /ro/f; echo guest > /ro/f"], platform=platform,
                      volumes=[edgevisor.Volume(str(tmp_path), "/ro", read_only=True)],
                      capture_output=True, text=True)
    assert r.returncode != 0 and r.stdout == "host\n" and "Read-only" in r.stderr
    assert (tmp_path / "f").read_text() == "host\n"


def test_env_cwd_user_network(platform):
    r = edgevisor.run(["sh", "-c", "env | sort; pwd; id -u; id -g; cat /proc/net/dev"],
                      platform=platform, env={"GREETING": "hi", "PATH": "/usr/bin:/bin"},
                      cwd="/etc", user="65534:65534", network="none", capture_output=True,
                      text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # sh itself adds PWD (and SHLVL); nothing of the caller's environment is there.
    env = {line.split("=", 1)[0] for line in lines if "=" in line}
    assert env <= {"GREETING", "PATH", "PWD", "SHLVL", "_"} and "GREETING=hi" in lines
    assert lines[lines.index("/etc") + 1:][:2] == ["65534", "65534"]
    assert [line.split(":")[0].strip() for line in lines[-1:]] == ["lo"]


def test_default_environment_is_the_callers(platform, monkeypatch):
    monkeypatch.setenv("EDGEVISOR_API_TEST", "caller's")
    r = edgevisor.run(["sh", "-c", 'echo "$EDGEVISOR_API_TEST|$PYTHONPATH"'], platform=platform,
                      capture_output=True, text=True)
    assert r.stdout == f"caller's|{os.environ.get('PYTHONPATH', '')}\n"


def test_rootfs(platform, tmp_path):
    if BUSYBOX is None:
        pytest.skip("busybox-static is not installed (./run-tests installs it)")
    (tmp_path / "bin").mkdir()
    shutil.copy(BUSYBOX, tmp_path / "bin/busybox")
    r = edgevisor.run(["/bin/busybox", "ls", "/"], platform=platform, rootfs=str(tmp_path),
                      capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "bin" in r.stdout.split() and "usr" not in r.stdout.split()


@pytest.mark.parametrize("kwargs, message", [
    ({"rootfs": "/nonexistent"}, "rootfs '/nonexistent' is not a directory"),
    ({"volumes": ["nocolon"]}, "volume 'nocolon': expected HOST:GUEST[:ro]"),
    ({"volumes": ["/nonexistent:/x"]}, "-v: '/nonexistent' is not a directory or a regular file"),
    ({"network": "wifi"}, "--network 'wifi': expected one of sandbox, none, host"),
    ({"user": "nobody-here"}, "--user: no user 'nobody-here' in the rootfs's /etc/passwd"),
    ({"limits": edgevisor.Limits(pids=0)}, "--pids-limit 0: must be at least 1"),
    ({"platform": "kvm"}, "platform 'kvm': expected one of seccomp, ptrace"),
])
def test_what_cannot_be_set_up_raises_sandbox_error(platform, kwargs, message):
    with pytest.raises(edgevisor.SandboxError) as e:
        edgevisor.run(["true"], **{"platform": platform, **kwargs})
    assert str(e.value) == message


def test_a_missing_command_raises_the_clis_line(platform):
    with pytest.raises(edgevisor.SandboxError) as e:
        edgevisor.run(["no-such-command"], platform=platform, capture_output=True)
    assert str(e.value) == "no-such-command: No such file or directory"
    cli = edgevisor_cli("do", f"--platform={platform}", "--", "no-such-command")
    assert (cli.returncode, cli.stderr) == (127, f"edgevisor: {e.value}\n")


def test_the_callers_process_is_left_alone(platform, tmp_path):
    """The sandbox starts in a process of its own: the caller keeps its descriptors, its
    signal handlers and its pid namespace for the children it forks later."""
    kept = os.open(tmp_path, os.O_RDONLY)

    def ours(*_):
        pass

    previous = signal.signal(signal.SIGTERM, ours)
    ns = {n: os.readlink(f"/proc/self/ns/{n}") for n in ("pid", "pid_for_children", "mnt")}
    try:
        assert edgevisor.run(["true"], platform=platform).returncode == 0
        os.fstat(kept)
        assert signal.getsignal(signal.SIGTERM) is ours
        assert {n: os.readlink(f"/proc/self/ns/{n}") for n in ns} == ns
    finally:
        signal.signal(signal.SIGTERM, previous)
        os.close(kept)


def _sandbox_cgroups(pid: int) -> list[str]:
    return glob.glob(f"/sys/fs/cgroup/**/edgevisor-{pid}-*", recursive=True)


def test_a_timeout_kills_the_whole_sandbox(platform, tmp_path, monkeypatch):
    """Daemons (a new session, a double fork) go with the command: nothing of the sandbox
    is left when TimeoutExpired reaches the caller, not even its cgroup."""
    token = str(os.getpid() * 1000 + 917)  # in the guests' command lines, not in ours
    script = (f"setsid sleep {token}1 & (sleep {token}2 &); sleep {token}3 & "
              "echo started > /out/started; wait")
    front_ends = []
    real_popen = subprocess.Popen

    def recording_popen(*args, **kw):
        proc = real_popen(*args, **kw)
        front_ends.append(proc.pid)
        return proc

    monkeypatch.setattr(api.subprocess, "Popen", recording_popen)
    with pytest.raises(subprocess.TimeoutExpired) as e:
        edgevisor.run(["sh", "-c", script], platform=platform, volumes=[f"{tmp_path}:/out"],
                      limits=edgevisor.Limits(pids=64), timeout=15)
    assert e.value.cmd == ["sh", "-c", script]
    assert (tmp_path / "started").read_text() == "started\n"  # the daemons did exist
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if token.encode() in f.read():
                    left.append(pid)
        except OSError:
            pass
    assert left == []
    assert len(front_ends) == 1 and not os.path.exists(f"/proc/{front_ends[0]}")
    assert _sandbox_cgroups(front_ends[0]) == []


def test_a_keyboard_interrupt_kills_the_sandbox_too(platform, monkeypatch):
    token = str(os.getpid() * 1000 + 918)
    killed = []
    real_kill = api._kill_sandbox

    def interrupted_communicate(self, *args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(subprocess.Popen, "communicate", interrupted_communicate)
    monkeypatch.setattr(api, "_kill_sandbox", lambda proc: (killed.append(proc.pid),
                                                           real_kill(proc)))
    with pytest.raises(KeyboardInterrupt):
        edgevisor.run(["sleep", token], platform=platform)
    assert len(killed) == 1 and not os.path.exists(f"/proc/{killed[0]}")
