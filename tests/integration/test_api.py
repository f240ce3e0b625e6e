"""The Python API, edgevisor.run, driving real programs (busybox sh, python3, sqlite3) on both
platforms: what a grader, a CI runner or an agent tool would do with it."""

import concurrent.futures
import gc
import glob
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import warnings

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
    assert _with_token(token) == []
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


# edgevisor.Sandbox: several commands in one sandbox.

def _alive(pids: dict[int, int | None]) -> list[int]:
    """Those of pids (pid: its start time) that are still the same process, not a zombie."""
    from edgevisor.oci.procs import start_time

    return [pid for pid, started in pids.items() if start_time(pid) == started]


def _poll(done, timeout: float = 10) -> None:
    """Waits until `done()` or `timeout` seconds; the caller asserts what it needs."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)


def _with_token(token: str) -> list[str]:
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if token.encode() in f.read():
                    left.append(pid)
        except OSError:
            pass
    return left


def test_sandbox_files_and_processes_persist_between_runs(platform, tmp_path):
    """/tmp, the overlay over the host's root and a volume are the same from one run to the
    next, and a process left running is still there; the caller's process is untouched."""
    before = {s: signal.getsignal(s) for s in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT)}
    ns = {n: os.readlink(f"/proc/self/ns/{n}") for n in ("pid", "pid_for_children", "mnt")}
    fds = sorted(os.listdir("/proc/self/fd"))
    token = str(os.getpid() * 1000 + 931)
    with edgevisor.Sandbox(platform=platform, volumes=[f"{tmp_path}:/out"]) as sb:
        first = sb.run(["sh", "-c", f"echo hi > /tmp/x; echo etc > /etc/edgevisor-sandbox; "
                        f"echo vol > /out/v; setsid sleep {token} & echo $! > /tmp/pid"],
                       capture_output=True, timeout=30)
        assert (first.returncode, first.stdout, first.stderr) == (0, b"", b"")
        done = sb.run(["sh", "-c", "cat /tmp/x /etc/edgevisor-sandbox /out/v; "
                       "kill -0 $(cat /tmp/pid) && echo alive"],
                      capture_output=True, text=True, timeout=30)
        assert (done.returncode, done.stdout) == (0, "hi\netc\nvol\nalive\n"), done.stderr
        assert done.args == ["sh", "-c", "cat /tmp/x /etc/edgevisor-sandbox /out/v; "
                             "kill -0 $(cat /tmp/pid) && echo alive"]
    assert not os.path.exists("/etc/edgevisor-sandbox")
    assert (tmp_path / "v").read_text() == "vol\n"
    assert {s: signal.getsignal(s) for s in before} == before
    assert {n: os.readlink(f"/proc/self/ns/{n}") for n in ns} == ns
    assert sorted(os.listdir("/proc/self/fd")) == fds  # none closed, none left open
    assert _with_token(token) == []


def test_sandbox_env_cwd_user_per_run(platform):
    with edgevisor.Sandbox(platform=platform, env={"WHO": "sandbox", "PATH": "/usr/bin:/bin"},
                           cwd="/etc", user="65534:65534") as sb:
        default = sb.run(["sh", "-c", 'echo "$WHO|$OTHER"; pwd; id -u'], capture_output=True,
                         text=True)
        assert default.stdout == "sandbox|\n/etc\n65534\n", default.stderr
        own = sb.run(["sh", "-c", 'echo "$WHO|$OTHER"; pwd; id -u; id -g'], capture_output=True,
                     text=True, env={"OTHER": "run", "PATH": "/usr/bin:/bin"}, cwd="/usr",
                     user=0)
        assert own.stdout == "|run\n/usr\n0\n0\n", own.stderr


def test_sandbox_default_environment_and_directory_are_the_callers(platform, monkeypatch):
    monkeypatch.setenv("EDGEVISOR_SANDBOX_TEST", "caller's")
    monkeypatch.chdir("/usr/share")
    with edgevisor.Sandbox(platform=platform) as sb:
        monkeypatch.setenv("EDGEVISOR_SANDBOX_TEST", "changed later")
        r = sb.run(["sh", "-c", 'echo "$EDGEVISOR_SANDBOX_TEST"; pwd'], capture_output=True,
                   text=True)
    assert r.stdout == "caller's\n/usr/share\n"


def test_sandbox_stdin_output_and_exit_status(platform):
    with edgevisor.Sandbox(platform=platform) as sb:
        r = sb.run(["python3", "-c", "import sys; print(sys.stdin.read().upper())"],
                   stdin=b"from the caller" * 10000, capture_output=True)
        assert (r.returncode, r.stdout) == (0, b"FROM THE CALLER" * 10000 + b"\n"), r.stderr
        r = sb.run(["sh", "-c", "echo out; echo err >&2; exit 3"], capture_output=True)
        assert (r.returncode, r.stdout, r.stderr) == (3, b"out\n", b"err\n")
        r = sb.run(["sh", "-c", "cat; echo end"], stdin=subprocess.DEVNULL, capture_output=True)
        assert (r.returncode, r.stdout) == (0, b"end\n")
        assert sb.run(["sh", "-c", "kill -TERM $$"]).returncode == 128 + signal.SIGTERM
        # a command's own "edgevisor: " line and 127 are its own, not the sandbox's failure
        r = sb.run(["sh", "-c", "echo 'edgevisor: forged' >&2; exit 127"], capture_output=True)
        assert (r.returncode, r.stderr) == (127, b"edgevisor: forged\n")


def test_sandbox_timeout_kills_the_command_and_the_sandbox_survives(platform):
    token = str(os.getpid() * 1000 + 932)
    with edgevisor.Sandbox(platform=platform) as sb:
        # a process of an earlier command, which the timeout must leave alone
        sb.run(["sh", "-c", f"echo kept > /tmp/kept; setsid sleep {token}0 &"], timeout=30)
        script = (f"sleep {token}1 & (setsid sleep {token}2 &); sh -c 'sleep {token}3' & "
                  "echo started > /tmp/started; wait")
        with pytest.raises(subprocess.TimeoutExpired) as e:
            sb.run(["sh", "-c", script], timeout=3, capture_output=True)
        assert e.value.cmd == ["sh", "-c", script] and e.value.timeout == 3
        # the command, its children and a daemon still below it are gone already
        assert _with_token(token + "1") == _with_token(token + "3") == []
        assert len(_with_token(token + "0")) == 1
        after = sb.run(["sh", "-c", "cat /tmp/kept /tmp/started"], capture_output=True,
                       text=True, timeout=30)
        assert (after.returncode, after.stdout) == (0, "kept\nstarted\n")


def test_sandbox_close_leaves_no_process_cgroup_or_state(platform):
    from edgevisor.oci.procs import guest_processes, start_time

    token = str(os.getpid() * 1000 + 933)
    with edgevisor.Sandbox(platform=platform, limits=edgevisor.Limits(pids=64)) as sb:
        sb.run(["sh", "-c", f"setsid sleep {token} & (sleep {token} &); echo ok"],
               capture_output=True, timeout=30)
        # the two sleeps outlive their shell, which may return while they are mid-fork or
        # mid-exec (an empty cmdline then)
        _poll(lambda: len(_with_token(token)) == 2)
        holder = sb.holder_pid
        with open(f"/proc/{holder}/task/{holder}/children") as f:
            sentry = int(f.read().split()[0])
        processes = [holder, sentry, *guest_processes(sentry)]
        pids = {pid: start_time(pid) for pid in processes}
        assert len(_with_token(token)) == 2 and len(pids) >= 6  # + gofer, init, spawner
        assert _sandbox_cgroups(holder) != []
        root = sb.runtime_root
        assert os.stat(root).st_mode & 0o777 == 0o700
    assert _alive(pids) == [] and _with_token(token) == []
    assert _sandbox_cgroups(holder) == [] and not os.path.exists(root)
    with pytest.raises(edgevisor.SandboxError, match="the sandbox is closed"):
        sb.run(["true"])
    sb.close()  # again: nothing to do


def test_sandbox_closes_when_the_block_raises_or_the_caller_dies(platform):
    from edgevisor.oci.procs import start_time

    with pytest.raises(RuntimeError):
        with edgevisor.Sandbox(platform=platform) as sb:
            holder = {sb.holder_pid: start_time(sb.holder_pid)}
            raise RuntimeError("the caller's")
    assert sb.closed and _alive(holder) == []
    # A caller that dies without closing takes its sandbox with it.
    caller = subprocess.run(
        [sys.executable, "-c", "import edgevisor, os, sys; "
         f"sb = edgevisor.Sandbox(platform={platform!r}); "
         "print(sb.holder_pid, sb.runtime_root, flush=True); os._exit(0)"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(edgevisor.__file__))})
    orphan, root = caller.stdout.split()
    _poll(lambda: not os.path.exists(f"/proc/{orphan}"))
    assert not os.path.exists(f"/proc/{orphan}") and not os.path.exists(root)


def test_sandbox_runs_commands_at_once_from_threads(platform):
    with edgevisor.Sandbox(platform=platform) as sb:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            waiting = pool.submit(sb.run, ["sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.05; "
                                           "done; echo went"], capture_output=True, timeout=60)
            time.sleep(0.2)
            assert not waiting.done()
            assert sb.run(["touch", "/tmp/go"], timeout=30).returncode == 0
            assert waiting.result().stdout == b"went\n"


def test_sandbox_over_a_rootfs_without_a_shell_or_python(platform, tmp_path):
    """The init is edgevisor's own: a rootfs with only busybox serves as well."""
    if BUSYBOX is None:
        pytest.skip("busybox-static is not installed (./run-tests installs it)")
    (tmp_path / "bin").mkdir()
    shutil.copy(BUSYBOX, tmp_path / "bin/busybox")
    with edgevisor.Sandbox(platform=platform, rootfs=str(tmp_path)) as sb:
        sb.run(["/bin/busybox", "sh", "-c", "echo x > /made"], timeout=30)
        r = sb.run(["/bin/busybox", "ls", "/"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "made" in r.stdout.split(), r.stderr
    assert not (tmp_path / "made").exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"rootfs": "/nonexistent"}, "rootfs '/nonexistent' is not a directory"),
    ({"volumes": ["/nonexistent:/x"]}, "-v: '/nonexistent' is not a directory or a regular file"),
    ({"network": "wifi"}, "--network 'wifi': expected one of sandbox, none, host"),
    ({"user": "nobody-here"}, "--user: no user 'nobody-here' in the rootfs's /etc/passwd"),
    ({"cwd": "etc"}, "-w 'etc': must be an absolute path"),
    ({"limits": edgevisor.Limits(pids=0)}, "--pids-limit 0: must be at least 1"),
])
def test_sandbox_bad_options_raise_sandbox_error(platform, kwargs, message):
    with pytest.raises(edgevisor.SandboxError) as e:
        edgevisor.Sandbox(platform=platform, **kwargs)
    assert str(e.value) == message


def test_sandbox_bad_run_options_and_missing_commands(platform):
    with edgevisor.Sandbox(platform=platform) as sb:
        for kwargs, message in [({"user": "nobody-here"},
                                 "--user: no user 'nobody-here' in the rootfs's /etc/passwd"),
                                ({"cwd": "tmp"}, "-w 'tmp': must be an absolute path")]:
            with pytest.raises(edgevisor.SandboxError) as e:
                sb.run(["true"], **kwargs)
            assert str(e.value) == message
        with pytest.raises(edgevisor.SandboxError) as e:
            sb.run(["no-such-command"], capture_output=True)
        assert str(e.value) == "no-such-command: No such file or directory"
        with pytest.raises(edgevisor.SandboxError) as e:
            sb.run(["true"], cwd="/nonexistent")
        assert str(e.value) == ("cannot enter the working directory /nonexistent: No such file "
                                "or directory")
        with pytest.raises(TypeError):
            sb.run("echo hi")
        with pytest.raises(edgevisor.SandboxError) as e:
            sb.run(["/etc/passwd"])
        assert str(e.value) == "/etc/passwd: Permission denied"
        assert sb.run(["true"]).returncode == 0  # none of these harmed the sandbox
    with pytest.raises(edgevisor.SandboxError) as e:
        edgevisor.run(["no-such-command"], platform=platform, capture_output=True)
    assert str(e.value) == "no-such-command: No such file or directory"  # the same line


def test_sandbox_pids_limit_is_the_commands_as_for_run(platform):
    """--pids-limit counts the guest's tasks alone: the init and the spawner, edgevisor's,
    get room of their own, so a command may have as many as under edgevisor.run."""
    forks = ("import os, time\n"
             "kids = []\n"
             "for _ in range(10):\n"
             "    try:\n"
             "        pid = os.fork()\n"
             "    except OSError:\n"
             "        break\n"
             "    if pid == 0:\n"
             "        time.sleep(2)\n"
             "        os._exit(0)\n"
             "    kids.append(pid)\n"
             "print(len(kids))\n"
             "for k in kids:\n"
             "    os.waitpid(k, 0)\n")
    limits = edgevisor.Limits(pids=4)
    with edgevisor.Sandbox(platform=platform, limits=limits) as sb:
        r = sb.run(["python3", "-c", forks], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, "3\n"), r.stderr
    alone = edgevisor.run(["python3", "-c", forks], platform=platform, limits=limits,
                          capture_output=True, text=True, timeout=60)
    assert alone.stdout == r.stdout


HOG = "b = bytearray(400 << 20); b[::4096] = b'x' * len(b[::4096]); print('survived')"
OOM_LINE = "edgevisor: the memory limit (--memory 64m) killed "


def test_the_memory_limits_kill_is_said_after_the_commands_stderr(platform, capfd):
    """As `edgevisor do` prints it: the command's result stands (137), and the line follows
    its stderr, captured or on the caller's."""
    limits = edgevisor.Limits(memory=64 << 20)
    r = edgevisor.run(["sh", "-c", f'echo before >&2; python3 -c "{HOG}"'], platform=platform,
                      limits=limits, capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout) == (137, "")
    assert r.stderr.startswith("before\n") and r.stderr.endswith(OOM_LINE + "the command\n")
    capfd.readouterr()
    r = edgevisor.run(["python3", "-c", HOG], platform=platform, limits=limits, timeout=120)
    assert r.returncode == 137
    assert capfd.readouterr().err.endswith(OOM_LINE + "the command\n")


def test_sandbox_says_when_the_memory_limit_killed_in_a_run(platform, capfd):
    """Each run that the memory limit's OOM killer struck says so, as edgevisor.run does;
    the sandbox survives it, and the runs after it say nothing."""
    with edgevisor.Sandbox(platform=platform, limits=edgevisor.Limits(memory=64 << 20)) as sb:
        r = sb.run(["python3", "-c", HOG], capture_output=True, text=True, timeout=120)
        assert (r.returncode, r.stdout) == (137, "")
        assert r.stderr.endswith(OOM_LINE + "the command\n"), r.stderr
        assert sb.run(["true"], capture_output=True, timeout=60).stderr == b""
        r = sb.run(["sh", "-c", f'python3 -c "{HOG}"; echo "child $?"'], capture_output=True,
                   timeout=120)
        assert (r.returncode, r.stdout) == (0, b"child 137\n")
        assert r.stderr.endswith((OOM_LINE + "1 process of the sandbox\n").encode())
        capfd.readouterr()
        assert sb.run(["python3", "-c", HOG], timeout=120).returncode == 137
        assert capfd.readouterr().err.endswith(OOM_LINE + "the command\n")


def test_an_unclosed_sandbox_ends_when_collected(platform):
    """As subprocess.Popen: a ResourceWarning, and nothing of the sandbox is left."""
    from edgevisor.oci.procs import start_time

    sb = edgevisor.Sandbox(platform=platform, limits=edgevisor.Limits(pids=64))
    holder, root = sb.holder_pid, sb.runtime_root
    alive = {holder: start_time(holder)}
    assert sb.run(["true"], timeout=60).returncode == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del sb
        gc.collect()
    assert [w.category for w in caught] == [ResourceWarning]
    assert f"holder pid {holder}" in str(caught[0].message)
    assert _alive(alive) == [] and not os.path.exists(root)
    assert _sandbox_cgroups(holder) == []
