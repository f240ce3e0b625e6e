"""`docker run --runtime=...` against a dockerd of the tests' own (conftest.py), each case on
every runtime the conftest names (edgevisor on both platforms by default).

Each case checks the container's output, and where a case writes to the host, the host."""

import http.server
import os
import shutil
import socket
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import RUNTIMES
from .terminal import converse


def run(daemon, runtime, *args, check=False, **kw):
    return daemon.docker("run", "--rm", f"--runtime={runtime}", *args, check=check, **kw)


def wait_until(predicate, what, timeout=60):
    """Poll for a state the test needs before it goes on (not a measurement: no verdict
    depends on how long it takes, only on whether it comes)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.2)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=60):
    """The body at url, retrying until the server in the container listens."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


# --- one command, run and removed -------------------------------------------------------------

def test_echo(daemon, runtime, busybox):
    result = run(daemon, runtime, busybox, "echo", "hi")
    assert (result.returncode, result.stdout) == (0, "hi\n"), result.stderr


@pytest.mark.parametrize("status, flags, command", [
    (0, [], ["true"]),
    (7, [], ["sh", "-c", "exit 7"]),
    # pid 1 ignores signals it has no handler for, so the dying shell runs under docker-init
    # (--init, bound in as a single file), which exits 128+N for it: docker shows that number.
    (137, ["--init"], ["sh", "-c", "kill -KILL $$"]),
    (143, ["--init"], ["sh", "-c", "kill -TERM $$"]),
])
def test_exit_status(daemon, runtime, busybox, status, flags, command):
    result = run(daemon, runtime, *flags, busybox, *command)
    assert result.returncode == status, result.stderr


def test_a_missing_command_fails_create_as_with_runc(daemon, runtime, busybox):
    """The holder checks the command while docker's prestart hook gives the container its
    network: the error is still create's, and docker reports it as it does runc's."""
    name = f"missing-{runtime}"
    result = run(daemon, runtime, "--name", name, busybox, "no-such-command")
    assert result.returncode == 127, result.stderr
    assert 'exec: "no-such-command": executable file not found in $PATH' in result.stderr
    # --rm removed it (and the suite's end checks that nothing of it is left on the host)
    assert daemon.docker("ps", "-aq", "--filter", f"name={name}").stdout == ""


def test_stdin(daemon, runtime, busybox):
    result = run(daemon, runtime, "-i", busybox, "tr", "a-z", "A-Z", input="hello\nworld\n")
    assert (result.returncode, result.stdout) == (0, "HELLO\nWORLD\n"), result.stderr


# The resize travels through docker's API to the runtime's pty while the shell runs: the
# shell waits (boundedly) for it to land, then shows its size.
AWAIT_RESIZE = (b'i=0; until [ "$(stty size)" = "33 101" ] || [ $i = 600 ]; do sleep 0.1;'
                b' i=$((i+1)); done; ')


def assert_names_its_pty(runtime, lines, shown):
    """`tty` printed the pty's /dev/pts name: a name of the container's own devpts, as runc
    makes it (edgevisor: its guest's devpts, issue 13, item 7)."""
    assert any(line.startswith("/dev/pts/") for line in lines), shown


def test_tty(daemon, runtime, busybox):
    argv = daemon.docker_argv("run", "--rm", "-it", f"--runtime={runtime}", busybox, "sh")
    status, shown = converse(argv, AWAIT_RESIZE + b"stty size; tty; echo $((6*7)); exit 3\n",
                             resize=(33, 101), env=daemon.env)
    lines = shown.splitlines()
    assert status == 3, shown
    # Whole lines: the terminal also echoes what was typed.
    assert "33 101" in lines and "42" in lines, shown
    assert_names_its_pty(runtime, lines, shown)


def test_env_and_workdir(daemon, runtime, busybox):
    result = run(daemon, runtime, "-e", "GREETING=hello there", "-w", "/srv/work", busybox,
                 "sh", "-c", 'echo "$GREETING"; pwd')
    assert (result.returncode, result.stdout) == (0, "hello there\n/srv/work\n"), result.stderr


def test_user(daemon, runtime, busybox):
    result = run(daemon, runtime, "-u", "1000", busybox, "sh", "-c",
                 "id -u; id -g; touch /etc/owned 2>/dev/null || echo denied")
    assert (result.returncode, result.stdout) == (0, "1000\n1000\ndenied\n"), result.stderr


def test_read_only(daemon, runtime, busybox):
    result = run(daemon, runtime, "--read-only", busybox, "sh", "-c",
                 "touch /etc/x; echo status=$?")
    assert "Read-only file system" in result.stdout + result.stderr
    assert result.stdout.endswith("status=1\n"), result.stdout + result.stderr


def test_volumes(daemon, runtime, busybox):
    with tempfile.TemporaryDirectory() as rw, tempfile.TemporaryDirectory() as ro:
        Path(rw, "in").write_text("from the host\n")
        Path(ro, "kept").write_text("kept\n")
        result = run(daemon, runtime, "-v", f"{rw}:/rw", "-v", f"{ro}:/ro:ro", busybox,
                     "sh", "-c", "cat /rw/in; echo written > /rw/out; cat /ro/kept;"
                     " echo x > /ro/new; echo status=$?; rm /ro/kept; echo status=$?")
        assert result.stdout == "from the host\nkept\nstatus=1\nstatus=1\n", result.stderr
        assert result.stderr.count("Read-only file system") == 2, result.stderr
        assert Path(rw, "out").read_text() == "written\n"
        assert sorted(os.listdir(ro)) == ["kept"]


def test_tmpfs(daemon, runtime, busybox):
    result = run(daemon, runtime, "--read-only", "--tmpfs", "/scratch:size=1m", busybox,
                 "sh", "-c", "echo small > /scratch/a && cat /scratch/a;"
                 " dd if=/dev/zero of=/scratch/big bs=64k count=32 2>&1; echo status=$?")
    assert result.stdout.startswith("small\n"), result.stdout + result.stderr
    assert "No space left on device" in result.stdout
    assert result.stdout.endswith("status=1\n"), result.stdout


def test_network_none(daemon, runtime, busybox):
    result = run(daemon, runtime, "--network", "none", busybox, "sh", "-c",
                 f"cat /proc/net/dev; nc {daemon.gateway} 1 </dev/null")
    interfaces = [line.split(":")[0].strip() for line in result.stdout.splitlines()[2:]
                  if ":" in line]
    assert interfaces == ["lo"], result.stdout
    assert "Network is unreachable" in result.stderr, result.stderr


def test_bridge_reaches_the_host(daemon, runtime, busybox):
    """The default bridge gives the container an eth0 through which it reaches a server the
    host runs on the bridge's address (and nothing beyond: see daemon.py)."""
    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello from the host\n")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer((daemon.gateway, 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # busybox-static's wget crashes in static glibc's resolver; nc takes the address as is.
        result = run(daemon, runtime, busybox, "sh", "-c",
                     "grep -c eth0 /proc/net/dev;"
                     " printf 'GET / HTTP/1.0\\r\\n\\r\\n' |"
                     f" nc {daemon.gateway} {server.server_port} | tail -1")
    finally:
        server.shutdown()
        server.server_close()
    assert result.stdout == "1\nhello from the host\n", result.stdout + result.stderr


def test_published_port(daemon, runtime, busybox):
    port = free_port()
    name = f"published-{runtime}"
    try:
        daemon.docker("run", "-d", "--name", name, f"--runtime={runtime}",
                      "-p", f"127.0.0.1:{port}:80", busybox, "sh", "-c",
                      "mkdir /www && echo served from the container > /www/index.html"
                      " && exec httpd -f -p 80 -h /www")
        assert http_get(f"http://127.0.0.1:{port}/") == "served from the container\n"
    finally:
        daemon.docker("rm", "-f", name, check=False)  # a failed create leaves it Created


def test_pids_limit(daemon, runtime, busybox):
    # A shell forks up to 40 sleeps and dies at its first failed fork; the outer shell then
    # counts them with builtins only, as it cannot fork either.
    result = run(daemon, runtime, "--pids-limit", "20", busybox, "sh", "-c",
                 "sh -c 'i=0; while [ $i -lt 40 ]; do sleep 600 & i=$((i+1)); echo $i > /tmp/n;"
                 " done' 2>/tmp/err; read n < /tmp/n; kill -9 -1; echo started=$n;"
                 " read e < /tmp/err; echo \"$e\"")
    said = result.stdout + result.stderr  # the shell's own errors (a redirect's) too
    if runtime == "edgevisor-seccomp" and "Interrupted system call" in said:
        # A signal (the SIGCHLDs of kill -9 -1) that lands before the Sentry has received an
        # emulated call ends it with EINTR where Linux restarts it: the seccomp platform's
        # known window (docs/architecture.md), which this case hits now and then.
        pytest.xfail("EINTR from an emulated open interrupted before the Sentry got it")
    assert result.stdout.startswith("started="), result.stdout + result.stderr
    started = int(result.stdout.split("\n")[0].split("=")[1])
    assert 1 <= started < 20, result.stdout
    assert "can't fork: Resource temporarily unavailable" in result.stdout


def test_memory_limit(daemon, runtime, python3):
    touch = "import sys; b = b'x' * ({} << 20); print('allocated', len(b) >> 20)"
    # Room for a sandbox's own memory (edgevisor counts its Sentry and gofer in the limit).
    small = run(daemon, runtime, "--memory", "160m", "--memory-swap", "160m", python3,
                "python3", "-c", touch.format(16))
    assert (small.returncode, small.stdout) == (0, "allocated 16\n"), small.stderr
    big = run(daemon, runtime, "--memory", "160m", "--memory-swap", "160m", python3,
              "python3", "-c", touch.format(512))
    assert big.returncode == 137 and "allocated" not in big.stdout, big.stdout + big.stderr


def test_python_http_server(daemon, runtime, python3):
    port = free_port()
    name = f"python-http-{runtime}"
    try:
        daemon.docker("run", "-d", "--name", name, f"--runtime={runtime}",
                      "-p", f"127.0.0.1:{port}:8000", python3,
                      "python3", "-m", "http.server", "-d", "/etc", "8000")
        assert "user:x:1000:1000" in http_get(f"http://127.0.0.1:{port}/passwd")
    finally:
        daemon.docker("rm", "-f", name, check=False)


# --- one detached container through its life ---------------------------------------------------

# Counts into a volume (so the host can watch it while the container is paused) and answers
# SIGTERM by saying so and exiting 0.
LOOP = ("trap 'echo got TERM; exit 0' TERM; echo started; i=0;"
        " while true; do i=$((i+1)); echo $i > /count/n; sleep 0.1; done")


@pytest.fixture(params=RUNTIMES, scope="class")
def detached(request, daemon, busybox):
    runtime = request.param
    name = f"detached-{runtime}"
    count = Path(tempfile.mkdtemp(prefix="edgevisor-count-", dir="/var/tmp"))
    try:
        daemon.docker("run", "-d", "--name", name, f"--runtime={runtime}",
                      "-v", f"{count}:/count", busybox, "sh", "-c", LOOP)
        yield Container(daemon, name, count / "n")
    finally:
        daemon.docker("rm", "-f", name, check=False)
        shutil.rmtree(count)


class Container:
    def __init__(self, daemon, name, counter):
        self.daemon, self.name, self.counter = daemon, name, counter

    def inspect(self, field):
        return self.daemon.docker("inspect", "-f", "{{" + field + "}}", self.name).stdout.strip()

    def logs(self):
        result = self.daemon.docker("logs", self.name)
        return result.stdout + result.stderr

    def count(self):
        try:
            return int(self.counter.read_text())
        except (OSError, ValueError):  # not written yet, or caught between truncate and write
            return None

    def counting(self):
        first = self.count()
        wait_until(lambda: self.count() not in (None, first), f"{self.name} counts")


class TestDetached:
    def test_exec(self, detached):
        detached.counting()
        result = detached.daemon.docker("exec", detached.name, "sh", "-c",
                                        "cat /proc/1/cmdline | tr '\\0' ' '; exit 5", check=False)
        assert result.returncode == 5, result.stderr
        assert result.stdout.startswith("sh -c trap"), result.stdout

    def test_exec_it(self, detached):
        argv = detached.daemon.docker_argv("exec", "-it", detached.name, "sh")
        status, shown = converse(argv, AWAIT_RESIZE + b"stty size; tty; echo $((6*7)); exit 4\n",
                                 resize=(33, 101), env=detached.daemon.env)
        lines = shown.splitlines()
        assert status == 4 and "33 101" in lines and "42" in lines, shown
        assert_names_its_pty(detached.name.removeprefix("detached-"), lines, shown)

    def test_logs_top_stats(self, detached):
        assert detached.logs().splitlines()[0] == "started"
        top = detached.daemon.docker("top", detached.name).stdout
        assert "sh -c trap" in top, top
        stats = detached.daemon.docker("stats", "--no-stream", "--format",
                                       "{{.MemUsage}} {{.PIDs}}", detached.name).stdout.split()
        used, pids = stats[0], int(stats[-1])
        assert pids >= 1 and not used.startswith("0B"), stats

    def test_pause_unpause(self, detached):
        detached.daemon.docker("pause", detached.name)
        try:
            assert detached.inspect(".State.Status") == "paused"
            frozen = detached.count()
            time.sleep(1)  # a paused guest must not count: any change fails, however slow
            assert detached.count() == frozen
        finally:
            detached.daemon.docker("unpause", detached.name)
        assert detached.inspect(".State.Status") == "running"
        detached.counting()

    def test_update_memory(self, detached):
        detached.daemon.docker("update", "--memory", "300m", "--memory-swap", "300m",
                               detached.name)
        assert detached.inspect(".HostConfig.Memory") == str(300 << 20)
        limit = detached.daemon.docker("stats", "--no-stream", "--format", "{{.MemUsage}}",
                                       detached.name).stdout
        assert limit.strip().endswith("/ 300MiB"), limit

    def test_stop_runs_the_term_handler(self, detached):
        detached.daemon.docker("stop", "-t", "30", detached.name)
        assert detached.inspect(".State.Status") == "exited"
        assert detached.inspect(".State.ExitCode") == "0"
        assert detached.logs().splitlines()[-1] == "got TERM"

    def test_restart(self, detached):
        detached.daemon.docker("restart", "-t", "30", detached.name)
        assert detached.inspect(".State.Status") == "running"
        wait_until(lambda: detached.logs().count("started") == 2, "the restarted loop")
        detached.counting()

    def test_kill(self, detached):
        detached.daemon.docker("kill", detached.name)
        assert detached.inspect(".State.Status") == "exited"
        assert detached.inspect(".State.ExitCode") == "137"

    def test_rm_force(self, detached):
        detached.daemon.docker("start", detached.name)
        detached.counting()
        detached.daemon.docker("rm", "-f", detached.name)
        names = detached.daemon.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
        assert detached.name not in names
