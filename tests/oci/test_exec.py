"""`exec` into a running container, as containerd-shim-runc-v2 drives it for `docker exec`:
`exec --process P.json --detach --pid-file F [--console-socket S] ID`. The new process is in
the container's namespaces, under the same Sentry and filters, with its own stdio; its
pid-file process ends as it did. The guest cannot drive the spawner that makes it."""

import json
import os
import re
import socket
import subprocess
import time

import pytest

from edgevisor.platform.inject import Couriers

from .test_features import _read_until
from .conftest import receive_console
from .test_lifecycle import create, leftovers, new_id, wait_exit


@pytest.fixture
def running(runtime, bundle):
    """A started container whose init runs for long, detached: its id."""
    def start(*argv: str, user: tuple[int, int] | None = None) -> str:
        container = new_id()
        bundle.command(*(argv or ("sleep", "1000")))
        if user:
            bundle.edit(lambda c: c["process"]["user"].update(uid=user[0], gid=user[1]))
        create(runtime, bundle, container)
        assert runtime("start", container).returncode == 0
        return container
    return start


def _process(bundle, *argv: str, **fields) -> str:
    """A process.json as docker writes it for exec: the container's process, other args."""
    with open(f"{bundle.path}/config.json") as f:
        process = json.load(f)["process"]
    process.update({"args": list(argv), "terminal": False, **fields})
    path = os.path.join(bundle.path, f"process-{new_id()}.json")
    with open(path, "w") as f:
        json.dump(process, f)
    return path


def _exec_detached(runtime, bundle, container, *argv: str, **fields) -> int:
    """docker's call; the pid-file process's pid."""
    pid_file = os.path.join(bundle.path, f"exec-{new_id()}.pid")
    # the process keeps its stdio: no pipe that the test would wait on
    r = subprocess.run(runtime.argv("exec", "--process", _process(bundle, *argv, **fields),
                                    "--detach", "--pid-file", pid_file, container),
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 0, runtime.log_lines()
    with open(pid_file) as f:
        return int(f.read())


def test_exec_output_and_exit_status(runtime, bundle, running):
    container = running()
    r = runtime("exec", container, "sh", "-c", "echo hi from exec; echo oops >&2; exit 7")
    assert (r.returncode, r.stdout, r.stderr) == (7, "hi from exec\n", "oops\n")


def test_the_pid_file_process_ends_as_the_process_did(runtime, bundle, running):
    container = running()
    assert wait_exit(_exec_detached(runtime, bundle, container, "sh", "-c", "exit 3")) == 3
    assert wait_exit(_exec_detached(runtime, bundle, container, "sh", "-c", "kill -9 $$")) == 137
    assert wait_exit(_exec_detached(runtime, bundle, container, "sh", "-c", "kill $$")) == 143
    # the container's init is untouched by its exec'd processes
    assert runtime.state(container)["status"] == "running"


def test_exec_sees_the_containers_files_processes_and_network(runtime, bundle, running):
    for applet in ("wget", "ps"):
        os.symlink("busybox", f"{bundle.path}/rootfs/bin/{applet}")
    # The init serves on the container's loopback, which only its network namespace has.
    container = running("sh", "-c", "echo made-by-init > /tmp/mark; cd /tmp; "
                        "exec httpd -f -p 127.0.0.1:8080")
    r = runtime("exec", container, "sh", "-c",
                "until [ -e /tmp/mark ]; do sleep 0.1; done; cat /tmp/mark; ps -o comm; "
                "until wget -q -O - http://127.0.0.1:8080/mark; do sleep 0.1; done")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "made-by-init" and lines[-1] == "made-by-init"
    assert "httpd" in lines  # the init, in the same pid namespace


def test_exec_as_another_user_with_its_groups(runtime, bundle, running):
    container = running()
    r = runtime("exec", "--process", _process(
        bundle, "sh", "-c", "id -u; id -g; id -G; grep CapEff /proc/self/status",
        user={"uid": 1000, "gid": 1001, "additionalGids": [1002]}), container)
    assert r.returncode == 0, r.stderr
    uid, gid, groups, caps = r.stdout.splitlines()
    assert (uid, gid, sorted(groups.split())) == ("1000", "1001", ["1001", "1002"])
    assert caps.split()[1] == "0000000000000000"
    r = runtime("exec", "--user", "1000", container, "id", "-u")
    assert (r.returncode, r.stdout) == (0, "1000\n")


def test_exec_through_a_console_socket_gets_a_real_pty(runtime, bundle, running):
    container = running()
    path = os.path.join(bundle.path, "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    pid_file = os.path.join(bundle.path, "tty.pid")
    try:
        r = runtime("exec", "--process", _process(
            bundle, "sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo on-a-tty; tty; stty size; "
            "read line; echo got $line; exit 5", terminal=True,
            consoleSize={"height": 33, "width": 101}),
            "--detach", "--pid-file", pid_file, "--console-socket", path, container)
        assert r.returncode == 0, r.stderr
        msg, master = receive_console(listener)
    finally:
        listener.close()
    # a pty of the guest's own devpts, named as the guest names it (as runc's is)
    assert re.fullmatch(rb"/dev/pts/\d+", msg), msg
    output = _read_until(master, b"33 101")
    assert b"on-a-tty" in output and b"33 101" in output, output
    assert msg in output.replace(b"\r", b"").split(b"\n"), output  # `tty` printed it
    os.write(master, b"hello\n")
    assert b"got hello" in _read_until(master, b"got hello")
    with open(pid_file) as f:
        assert wait_exit(int(f.read())) == 5
    os.close(master)


def test_exec_after_the_init_exited_fails_cleanly(runtime, bundle):
    container = new_id()
    bundle.command("true")
    pid = create(runtime, bundle, container)
    assert runtime("start", container).returncode == 0
    assert wait_exit(pid) == 0
    r = runtime("exec", container, "echo", "never")
    assert r.returncode != 0 and r.stdout == ""
    errors = [line for line in runtime.log_lines() if line["level"] == "error"]
    assert [e["msg"] for e in errors] == ["cannot exec in a stopped container"]
    assert "Traceback" not in r.stderr


def test_exec_of_a_missing_command_is_one_json_error_line(runtime, bundle, running):
    container = running()
    r = runtime("exec", "--process", _process(bundle, "no-such-command"), "--detach",
                "--pid-file", os.path.join(bundle.path, "missing.pid"), container)
    assert r.returncode != 0
    errors = [line for line in runtime.log_lines() if line["level"] == "error"]
    assert len(errors) == 1 and "no-such-command" in errors[0]["msg"], errors
    assert "Traceback" not in r.stderr
    assert runtime.state(container)["status"] == "running"


def test_the_exec_d_process_gets_its_stdio_and_no_other_descriptor(runtime, bundle, running):
    container = running()
    r = runtime("exec", container, "ls", "/proc/self/fd")
    assert r.returncode == 0, r.stderr
    # 3: ls's own listing; on ptrace, the Sentry's courier (platform/inject.py), as every
    # guest process has
    courier = {str(Couriers.HIGH)} if runtime.platform == "ptrace" else set()
    assert set(r.stdout.split()) == {"0", "1", "2", "3", *courier}


def test_a_root_guest_cannot_reach_the_spawners_descriptors(runtime, bundle, running):
    """The attack: find the spawner (the guest's pid 2) and open what it holds through /proc:
    the start-up's descriptors (the Sentry's pid namespace, its hand-over pipes) or the
    socket to the holder. Only its /dev/null opens; exec still works afterwards."""
    container = running()
    r = runtime("exec", container, "sh", "-c",
                "for fd in /proc/2/fd/*; do "
                "(exec 9<>$fd) 2>/dev/null && echo opened $(readlink $fd); done; "
                "dd if=/proc/2/mem of=/dev/null bs=1 count=1 skip=4194304 2>/dev/null "
                "&& echo read-mem; echo done")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["opened /dev/null"] * 3 + ["done"]
    r = runtime("exec", container, "echo", "still-works")
    assert (r.returncode, r.stdout) == (0, "still-works\n")


def test_a_guest_user_cannot_signal_the_spawner_and_a_root_one_only_denies_exec(
        runtime, bundle, running):
    container = running(user=(1000, 1000))
    r = runtime("exec", container, "sh", "-c", "id -u; kill -9 2; echo $?")
    assert r.stdout.split() == ["1000", "1"]
    r = runtime("exec", container, "echo", "still-works")
    assert (r.returncode, r.stdout) == (0, "still-works\n")
    # root in the guest can kill it (its own status may be lost with it); once it is gone,
    # execs fail with one clear line, and nothing else changes
    runtime("exec", "--user", "0:0", container, "sh", "-c", "kill -9 2")
    deadline = time.monotonic() + 60
    while (r := runtime("exec", container, "echo", "never")).returncode == 0:
        assert time.monotonic() < deadline, "the spawner outlived SIGKILL"
    assert r.stdout == ""
    assert "exec helper is gone" in runtime.log_lines()[-1]["msg"]
    assert runtime.state(container)["status"] == "running"


def test_nothing_is_left_after_delete_and_a_running_exec_dies_with_the_container(
        runtime, bundle, running):
    container = running()
    waiter = _exec_detached(runtime, bundle, container, "sleep", "1000")
    assert runtime("delete", "--force", container).returncode == 0
    assert wait_exit(waiter) == 137
    assert leftovers(runtime, container) == []
