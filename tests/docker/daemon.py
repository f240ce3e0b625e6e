"""A containerd and a dockerd of our own, beside whatever else runs on the host.

Everything they keep lives under one temporary directory: data root, exec root, pidfiles,
sockets, the daemon.json that registers the runtimes. Nothing is shared with a system docker:
the containers' cgroups sit under a parent of our own, their bridge is a bridge we create, and
dockerd touches neither iptables nor the host's IP forwarding (the userland proxy carries
`-p 127.0.0.1:P:80` to the container), so the containers reach the host and each other and
nothing beyond. `stop()` takes it all down and checks that nothing is left.

Used by the docker tests (tests/docker/) and by benchmarks/docker.py."""

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOCKER = "/usr/bin/docker"  # /usr/local/bin/docker may be another, unrelated client
DOCKERD = "/usr/sbin/dockerd"
CONTAINERD = "/usr/bin/containerd"
CTR = "/usr/bin/ctr"
CGROUP_ROOT = "/sys/fs/cgroup"
REPO = Path(__file__).resolve().parents[2]
# Paths outside their roots that containerd, its shims and dockerd make whatever they are told
# (the shims' sockets, runc's default root under containerd, dockerd's plugin directory):
# removed at the end if they were not there before, once empty.
HOST_TRACES = ("/run/containerd", "/run/docker")
PLATFORMS = ("seccomp", "ptrace")


def missing() -> str | None:
    """Why docker cannot run on this machine at all, or None."""
    if os.geteuid() != 0:
        return "the docker tests need root (dockerd, containerd)"
    for binary in (DOCKER, DOCKERD, CONTAINERD, CTR, "/usr/bin/containerd-shim-runc-v2"):
        if not os.access(binary, os.X_OK):
            return f"{binary} is not installed (Debian: docker.io, containerd)"
    return None


def runtime_wrapper(directory: Path, tree: Path = REPO, platform: str | None = None) -> Path:
    """An executable that runs `tree`'s edgevisor (on `platform`, for callers that pass no
    runtime arguments, as ctr). The shim calls the runtime with the bundle as its cwd, so the
    checkout must come from PYTHONPATH, not from the cwd."""
    wrapper = directory / ("edgevisor-runtime" + (f"-{platform}" if platform else ""))
    flags = f" --platform={platform}" if platform else ""
    wrapper.write_text(
        "#!/bin/sh\n"
        f"PYTHONPATH={tree} exec {sys.executable} -m edgevisor.cli{flags} \"$@\"\n"
    )
    wrapper.chmod(0o755)
    return wrapper


def edgevisor_runtimes(wrapper: Path) -> dict:
    """daemon.json's `runtimes`: `edgevisor` on the default platform, and one per platform."""
    runtimes = {"edgevisor": {"path": str(wrapper)}}
    for platform in PLATFORMS:
        runtimes[f"edgevisor-{platform}"] = {
            "path": str(wrapper), "runtimeArgs": [f"--platform={platform}"]}
    return runtimes


class Daemon:
    """containerd + dockerd under `self.dir`; `docker(...)` and `ctr(...)` talk to them."""

    def __init__(self, prefix: str = "edgevisor-docker-"):
        self.dir = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
        self.name = self.dir.name
        self.containerd_socket = self.dir / "containerd.sock"
        self.docker_socket = self.dir / "docker.sock"
        self.bridge = "evd" + self.name[-8:].lower().replace("_", "0")[:8]
        self.cgroup_parent = self.name
        self.subnet = self.gateway = None  # the bridge's, once made
        self.env = {**os.environ, "DOCKER_CONFIG": str(self.dir / "client"),
                    "DOCKER_HOST": f"unix://{self.docker_socket}"}
        self.env.pop("DOCKER_CONTEXT", None)
        self.procs: list[subprocess.Popen] = []
        self.traces_before = {p for p in HOST_TRACES if os.path.lexists(p)}

    # --- start ------------------------------------------------------------------------------

    def start(self, runtimes: dict) -> "Daemon":
        """Start with daemon.json's `runtimes` (their wrappers may live in self.dir)."""
        self.runtimes = runtimes
        try:
            self._make_bridge()
            self._start_containerd()
            self._start_dockerd()
        except BaseException:
            self.stop()
            raise
        return self

    def _make_bridge(self):
        self.subnet = subnet = _free_subnet()
        self.gateway = str(next(subnet.hosts()))
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/{subnet.prefixlen}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def _start_containerd(self):
        config = self.dir / "containerd.toml"
        config.write_text(
            "version = 2\n"
            f'root = "{self.dir}/containerd-root"\n'
            f'state = "{self.dir}/containerd-state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            "[grpc]\n"
            f'  address = "{self.containerd_socket}"\n'
            "[ttrpc]\n"
            f'  address = "{self.containerd_socket}.ttrpc"\n'
            "[debug]\n"
            '  address = ""\n'
            "[metrics]\n"
            '  address = ""\n'
        )
        self._spawn("containerd", [CONTAINERD, "--config", str(config)])
        self._wait(lambda: self.ctr("version", check=False).returncode == 0, "containerd")

    def _start_dockerd(self):
        config = self.dir / "daemon.json"
        config.write_text(json.dumps({
            "runtimes": self.runtimes,
            "bridge": self.bridge,
            "iptables": False,
            "ip6tables": False,
            "ip-forward": False,
            "ip-masq": False,
            "cgroup-parent": self.cgroup_parent,
            "log-driver": "json-file",
            "deprecated-key-path": str(self.dir / "key.json"),  # else /etc/docker/key.json
        }, indent=2))
        self._spawn("dockerd", [
            DOCKERD, "--config-file", str(config),
            "--data-root", str(self.dir / "data"), "--exec-root", str(self.dir / "exec"),
            "--pidfile", str(self.dir / "dockerd.pid"),
            "--host", f"unix://{self.docker_socket}",
            "--containerd", str(self.containerd_socket),
        ])
        self._wait(lambda: self.docker("version", check=False).returncode == 0, "dockerd")
        self.own_mounts = set(_mounts_under(self.dir))

    def _spawn(self, name, argv):
        log = open(self.dir / f"{name}.log", "w")
        with log:
            self.procs.append(subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self.env,
                start_new_session=True))

    def _wait(self, ready, name, timeout=60):
        deadline = time.monotonic() + timeout
        while not ready():
            proc = self.procs[-1]
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.dir / f"{name}.log").read_text()[-2000:]
                raise RuntimeError(f"{name} did not start (exit {proc.poll()}):\n{tail}")
            time.sleep(0.2)

    # --- use --------------------------------------------------------------------------------

    def docker(self, *args, check=True, timeout=120, **kw) -> subprocess.CompletedProcess:
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        result = subprocess.run([DOCKER, "-H", f"unix://{self.docker_socket}", *args],
                                env=self.env, timeout=timeout, **kw)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}{result.stderr}")
        return result

    def ctr(self, *args, check=True, timeout=120, **kw) -> subprocess.CompletedProcess:
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        result = subprocess.run([CTR, "--address", str(self.containerd_socket), *args],
                                env=self.env, timeout=timeout, **kw)
        if check and result.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}{result.stderr}")
        return result

    def docker_argv(self, *args) -> list[str]:
        return [DOCKER, "-H", f"unix://{self.docker_socket}", *args]

    # --- stop -------------------------------------------------------------------------------

    def container_residue(self) -> list[str]:
        """What is left of containers while the daemons run: containers, runtime state,
        task bundles, shims and other processes, cgroups, mounts beyond the daemons' own."""
        found = [f"container {c}" for c in self.docker("ps", "-aq").stdout.split()]
        states = [*self.dir.glob("exec/runtime-*/*/*"),
                  *self.dir.glob("containerd-state/io.containerd.runtime.v2.task/*/*")]
        found += [f"state {p}" for p in states]
        daemons = {p.pid for p in self.procs}
        found += [f"process {pid}: {cmd}" for pid, cmd in self._our_processes()
                  if pid not in daemons]
        for parent in self._our_cgroups():
            found += [f"cgroup {c}" for c in Path(parent).iterdir() if c.is_dir()]
        found += [f"mount {m}" for m in _mounts_under(self.dir) if m not in self.own_mounts]
        return found

    def leftovers(self) -> list[str]:
        """What of ours is still on the host: processes, mounts, cgroups, the bridge."""
        found = [f"process {pid}: {cmd}" for pid, cmd in self._our_processes()]
        found += [f"mount {m}" for m in _mounts_under(self.dir)]
        found += [f"cgroup {c}" for c in self._our_cgroups()]
        if Path(f"/sys/class/net/{self.bridge}").exists():
            found.append(f"bridge {self.bridge}")
        found += [f"path {p}" for p in HOST_TRACES
                  if p not in self.traces_before and os.path.lexists(p)]
        found += [f"firewall rule {r}" for r in self._our_firewall_rules()]
        return found

    def stop(self) -> list[str]:
        """Stop both daemons, remove what they left, and return what could not be removed."""
        if len(self.procs) == 2 and self.procs[-1].poll() is None:  # dockerd runs
            ids = self.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
        for proc in reversed(self.procs):
            _terminate(proc)
        # A shim outlives its containerd when a container is left; it is ours by its address.
        for pid, _ in self._our_processes():
            _kill(pid)
        for mount in sorted(_mounts_under(self.dir), key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True)
        for cgroup in sorted(self._our_cgroups(), key=len, reverse=True):
            _rmdir_cgroup(cgroup)
        if Path(f"/sys/class/net/{self.bridge}").exists():
            _ip("link", "del", self.bridge)
        for trace in HOST_TRACES:
            if trace not in self.traces_before:
                _remove_empty_dirs(trace)
        left = self.leftovers()
        if not left:
            shutil.rmtree(self.dir, ignore_errors=True)
        return left

    def _our_processes(self):
        mine = os.getpid()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == mine:
                continue
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(self.dir) in cmd:
                yield int(entry.name), cmd.strip()

    def _our_firewall_rules(self):
        """Rules that name our bridge or its subnet: dockerd is told to add none (other
        programs' rules, which may come and go meanwhile, are not ours to judge)."""
        marks = [self.bridge, *([str(self.subnet)] if self.subnet else [])]
        for save in ("iptables-save", "ip6tables-save"):
            if not shutil.which(save):
                continue
            rules = subprocess.run([save], capture_output=True, text=True).stdout
            yield from (r for r in rules.splitlines() if any(m in r for m in marks))

    def _our_cgroups(self):
        for hierarchy in Path(CGROUP_ROOT).iterdir():
            for found in hierarchy.glob(f"**/{self.cgroup_parent}*"):
                if found.is_dir():
                    yield str(found)


def _ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 172.29-31/16 that no route on the host covers."""
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"],
                            capture_output=True, text=True).stdout
    used = []
    for line in routes.splitlines():
        try:
            used.append(ipaddress.ip_network(line.split()[0].replace("local", ""), strict=False))
        except ValueError:
            continue
    for third in range(29, 32):
        for fourth in range(0, 256, 7):
            net = ipaddress.ip_network(f"172.{third}.{fourth}.0/24")
            if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
                return net
    raise RuntimeError("no free /24 for the test bridge")


def _terminate(proc: subprocess.Popen, grace=30):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _mounts_under(directory: Path) -> list[str]:
    prefix = str(directory) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p.startswith(prefix)]


def _remove_empty_dirs(top):
    """Remove top and the directories under it, deepest first, as far as they are empty:
    another containerd or dockerd that came meanwhile keeps what it put there."""
    if not os.path.isdir(top):
        return
    for directory, _, _ in sorted(os.walk(top), key=lambda w: len(w[0]), reverse=True):
        try:
            os.rmdir(directory)
        except OSError:
            pass


def _rmdir_cgroup(path):
    # Children first: the kernel refuses to remove a cgroup that has any.
    for sub in sorted((p for p in Path(path).glob("**/") if p.is_dir()),
                      key=lambda p: len(str(p)), reverse=True):
        try:
            os.rmdir(sub)
        except OSError:
            pass
