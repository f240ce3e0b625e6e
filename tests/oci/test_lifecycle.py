"""A runc-style lifecycle driven directly, as containerd-shim-runc-v2 drives it: create,
start, state, kill, delete, run, and the error paths. Each leaves nothing on the host."""

import glob
import json
import os
import signal
import subprocess
import time
import uuid

import pytest

TIMEOUT = 60


def new_id() -> str:
    return uuid.uuid4().hex  # 32 hex characters; docker's are 64


def wait_exit(pid: int) -> int:
    """The pid-file process's status as the shim reports it: N, or 128 + its signal."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
        time.sleep(0.02)
    raise AssertionError(f"pid {pid} did not exit")


def leftovers(runtime, container: str) -> list[str]:
    """What the container could have left on the host: processes (their command lines name
    the id), cgroups, mounts, its state directory."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if container.encode() in f.read():
                    found.append(f"process {pid}")
        except OSError:
            pass
    found += glob.glob(f"/sys/fs/cgroup/*/edgevisor/{container}")
    found += glob.glob(f"/sys/fs/cgroup/edgevisor/{container}")
    with open("/proc/self/mountinfo") as f:
        found += [line for line in f if container in line or runtime.root in line]
    if os.path.exists(os.path.join(runtime.root, container)):
        found.append("state directory")
    return found


def create(runtime, bundle, container, *flags) -> int:
    pid_file = os.path.join(bundle.path, "init.pid")
    r = runtime("create", "--bundle", bundle.path, "--pid-file", pid_file, *flags, container)
    assert r.returncode == 0, r.stderr
    with open(pid_file) as f:
        return int(f.read())



def test_create_holds_the_guest_until_start_and_the_pid_file_process_exits_with_its_status(
        runtime, bundle, out):
    container = new_id()
    bundle.command("sh", "-c", "echo ran > /out/marker; exit 7")
    pid = create(runtime, bundle, container)
    state = runtime.state(container)
    assert (state["status"], state["pid"], state["id"]) == ("created", pid, container)
    assert state["bundle"] == bundle.path and state["ociVersion"]
    assert not os.path.exists(f"{out}/marker")  # no user code before start
    assert runtime("start", container).returncode == 0
    assert wait_exit(pid) == 7
    assert open(f"{out}/marker").read() == "ran\n"
    assert runtime.state(container)["status"] == "stopped"
    assert runtime("delete", container).returncode == 0
    assert leftovers(runtime, container) == []


def test_kill_of_a_created_container_ends_it_unstarted(runtime, bundle, out, tmp_path):
    container = new_id()
    bundle.command("sh", "-c", "echo ran > /out/marker")
    pid_file, said = bundle.path + "/init.pid", tmp_path / "said"
    with open(said, "w") as stdio:  # the container's stdout and stderr, as the shim's pipes
        subprocess.run(runtime.argv("create", "--bundle", bundle.path, "--pid-file", pid_file,
                                    container), stdin=subprocess.DEVNULL, stdout=stdio,
                       stderr=stdio, check=True, timeout=60)
    pid = int(open(pid_file).read())
    assert runtime("kill", container, "15").returncode == 0
    assert wait_exit(pid) == 128 + signal.SIGTERM
    assert said.read_text() == ""  # no word of edgevisor's own in the container's output
    assert not os.path.exists(f"{out}/marker")
    assert runtime.state(container)["status"] == "stopped"
    assert runtime("delete", container).returncode == 0
    assert leftovers(runtime, container) == []


def test_kill_reaches_the_guest_handler_then_sigkill_ends_it(runtime, bundle, out):
    container = new_id()
    bundle.command("sh", "-c", "trap 'echo term > /out/t; exit 3' TERM; echo up > /out/up; "
                   "while :; do sleep 0.1; done")
    pid = create(runtime, bundle, container)
    assert runtime("start", container).returncode == 0
    _wait_for(f"{out}/up")
    assert runtime.state(container)["status"] == "running"
    assert runtime("kill", container, "TERM").returncode == 0
    assert wait_exit(pid) == 3
    assert open(f"{out}/t").read() == "term\n"
    assert runtime("delete", container).returncode == 0

    container = new_id()
    bundle.command("sleep", "1000")
    pid = create(runtime, bundle, container)
    assert runtime("start", container).returncode == 0
    assert runtime("kill", container, "9").returncode == 0
    assert wait_exit(pid) == 137
    assert runtime("delete", container).returncode == 0
    assert leftovers(runtime, container) == []


def test_delete_of_a_running_container_is_refused_without_force(runtime, bundle, out):
    container = new_id()
    bundle.command("sh", "-c", "echo up > /out/up; exec sleep 1000")
    pid = create(runtime, bundle, container)
    assert runtime("start", container).returncode == 0
    _wait_for(f"{out}/up")
    r = runtime("delete", container)
    assert r.returncode != 0
    assert _last_error(runtime) == (f"cannot delete container {container} that is not "
                                    "stopped: running")
    assert runtime.state(container)["status"] == "running"
    assert runtime("delete", "--force", container).returncode == 0
    assert wait_exit(pid) == 137
    assert leftovers(runtime, container) == []
    # a second forced delete (docker sends one) finds nothing and is no error, as with runc
    assert runtime("delete", "--force", container).returncode == 0


def test_delete_force_of_a_created_container_leaves_nothing(runtime, bundle):
    container = new_id()
    pid = create(runtime, bundle, container)
    assert runtime("delete", "--force", container).returncode == 0
    wait_exit(pid)
    assert leftovers(runtime, container) == []


def test_start_twice_is_an_error(runtime, bundle, out):
    container = new_id()
    bundle.command("sh", "-c", "echo up > /out/up; exec sleep 1000")
    create(runtime, bundle, container)
    assert runtime("start", container).returncode == 0
    _wait_for(f"{out}/up")
    r = runtime("start", container)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert _last_error(runtime) == "cannot start an already running container"


def test_run_waits_and_deletes(runtime, bundle):
    container = new_id()
    bundle.command("sh", "-c", "echo hi from $(hostname); exit 5")
    r = runtime("run", "--bundle", bundle.path, container)
    assert (r.returncode, r.stdout) == (5, "hi from runc\n"), r.stderr
    assert leftovers(runtime, container) == []


def test_the_container_gets_fds_0_to_2_and_nothing_else(runtime, bundle, out):
    """create's caller (the shim) may leave more open (a socket at fd 3 was seen)."""
    container = new_id()
    bundle.command("sh", "-c", "ls /proc/self/fd > /out/fds")
    r_fd, w_fd = os.pipe()
    try:
        os.dup2(w_fd, 3, inheritable=True) if w_fd != 3 else None
        pid_file = os.path.join(bundle.path, "init.pid")
        r = runtime("create", "--bundle", bundle.path, "--pid-file", pid_file, container,
                    pass_fds=(3,))
        assert r.returncode == 0, r.stderr
    finally:
        os.close(r_fd)
        os.close(w_fd)
    assert runtime("start", container).returncode == 0
    wait_exit(int(open(pid_file).read()))
    # ls itself holds 3 (the directory it lists: a leaked 3 would push it to 4); the ptrace
    # platform's courier socket sits at 900 under `edgevisor do` as well (platform/inject.py)
    expected = {"0", "1", "2", "3"} | ({"900"} if runtime.platform == "ptrace" else set())
    assert set(open(f"{out}/fds").read().split()) == expected


@pytest.mark.parametrize("case", ["missing bundle", "bad config.json", "unknown id",
                                  "no such command"])
def test_errors_are_one_json_line_in_the_log(runtime, bundle, case):
    container = new_id()
    if case == "missing bundle":
        r = runtime("create", "--bundle", bundle.path + "-missing", container)
        expected = "config.json not found"
    elif case == "bad config.json":
        with open(f"{bundle.path}/config.json", "w") as f:
            f.write("{not json")
        r = runtime("create", "--bundle", bundle.path, container)
        expected = "config.json"
    elif case == "unknown id":
        r = runtime("start", container)
        expected = f"container does not exist: {container}"
    else:
        bundle.command("/no/such/command")
        r = runtime("create", "--bundle", bundle.path, container)
        expected = 'exec: "/no/such/command": executable file not found'
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and expected in r.stderr
    lines = runtime.log_lines()
    assert len(lines) == 1 and lines[0]["level"] == "error" and expected in lines[0]["msg"]
    assert set(lines[0]) == {"level", "msg", "time"}
    assert leftovers(runtime, container) == []


def test_a_failed_sandbox_set_up_leaves_nothing(runtime, bundle):
    """A failure after the holder has forked (here: a directory bound over a file of the
    read-only rootfs) is create's error, with nothing left."""
    container = new_id()
    bundle.edit(lambda c: c["mounts"].append(
        {"destination": "/bin/busybox", "type": "bind", "source": bundle.path,
         "options": ["rbind", "ro"]}))
    r = runtime("create", "--bundle", bundle.path, container)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "mountpoint /bin/busybox is not a directory" in runtime.log_lines()[-1]["msg"]
    assert leftovers(runtime, container) == []


def _last_error(runtime) -> str:
    lines = runtime.log_lines()
    assert lines and lines[-1]["level"] == "error"
    return lines[-1]["msg"]


def _wait_for(path: str) -> None:
    """Until the guest has written a whole line to `path` (a shell's `>` makes the file
    before the command writes it)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            with open(path) as f:
                if f.read().endswith("\n"):
                    return
        except FileNotFoundError:
            pass
        assert time.monotonic() < deadline, f"{path} never got its line"
        time.sleep(0.02)


def test_state_stays_right_when_the_sentry_dies(runtime, bundle, out):
    container = new_id()
    bundle.command("sh", "-c", "echo up > /out/up; exec sleep 1000")
    pid = create(runtime, bundle, container)
    assert runtime("start", container).returncode == 0
    _wait_for(f"{out}/up")
    sentry = next(int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == pid)
    os.kill(sentry, signal.SIGKILL)
    assert wait_exit(pid) == 137  # the holder reports the Sentry's death
    state = runtime.state(container)
    assert (state["status"], state["pid"]) == ("stopped", 0)
    assert runtime("delete", container).returncode == 0
    assert leftovers(runtime, container) == []


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def test_kill_all_signals_every_guest_process(runtime, bundle, out):
    """init handles TERM and lives on; with --all its child gets TERM too and dies (without
    --all it would sleep on, and the wait below would run out)."""
    container = new_id()
    bundle.command("sh", "-c", "trap 'echo trapped > /out/t' TERM; sleep 1000 & "
                   "echo up > /out/up; while :; do wait; sleep 1; done")
    pid = create(runtime, bundle, container)
    assert runtime("start", container).returncode == 0
    _wait_for(f"{out}/up")
    init, child = json.loads(runtime("ps", "--format", "json", container).stdout)[:2]
    assert runtime("kill", "--all", container, "TERM").returncode == 0
    deadline = time.monotonic() + TIMEOUT
    while os.path.exists(f"/proc/{child}") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not os.path.exists(f"/proc/{child}")
    _wait_for(f"{out}/t")
    assert os.path.exists(f"/proc/{init}")  # handled: init lives on
    assert runtime("kill", container, "KILL").returncode == 0
    assert wait_exit(pid) == 137
    assert runtime("delete", container).returncode == 0
