"""The sandbox's file system against Linux, with real programs on both platforms.

1. A hypothesis state machine applies random sequences of mkdir, symlink, rename (plain,
   RENAME_NOREPLACE, RENAME_EXCHANGE), unlink, rmdir, link, open (O_CREAT|O_EXCL, O_TRUNC,
   O_DIRECTORY, O_NOFOLLOW ...), chdir, write, truncate, stat, readlink and listdir to two
   copies of fs_opserver.py: one in the sandbox, working on the guest's /tmp (a tmpfs) or on
   a volume, and one natively as root, chrooted into a directory of its own (a fresh tmpfs in
   a private mount namespace for the first case, a directory on the volume's host file system
   for the second). Every answer (errno, or kind, permissions, link count and size) and the
   whole tree must agree. One long-lived guest serves a whole test: a `reset` request starts
   each example afresh.
2. A property: no resolution leaves a mount's root. Random paths made of `..`, `.`, names of
   directories and symlinks in a volume (absolute ones, relative ones, `..` chains, "/", a
   host path, loops) resolve in the sandbox exactly as in a native chroot holding the same
   tree, and nothing read is ever the host's marker beside the volume; the name a descriptor
   gets in /proc/self/fd is the path realpath gives.
"""

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from ..support import EDGEVISOR
from .fs_opserver import Server

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="the native side needs root (chroot, a tmpfs mount)")

SERVER = str(Path(__file__).with_name("fs_opserver.py"))
PYTHON = sys.executable
# The sandboxed server is handed over as source, run by the python3 on the guest's PATH:
# a checkout or venv under the host's /tmp is not in the guest's view (its /tmp is its own).
SERVER_SOURCE = Path(SERVER).read_text()
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
REPLY_TIMEOUT = 60


class ServerDied(AssertionError):
    pass


class OpServer:
    """One fs_opserver.py process, started on first use and again after it died."""

    def __init__(self, argv: list[str], name: str):
        self.argv, self.name = argv, name
        self.proc = None
        self.log = tempfile.TemporaryFile()

    def _start(self) -> None:
        self.log.seek(0)
        self.log.truncate()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log)
        ready = self._reply(("start",))
        if ready != ["ready"]:
            raise ServerDied(f"{self.name}: started with {ready!r}\n{self.stderr()}")

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def _reply(self, op):
        out = self.proc.stdout
        ready, _, _ = select.select([out], [], [], REPLY_TIMEOUT)
        line = out.readline() if ready else b""
        if not line:
            if ready:
                self.proc.wait(5)
            else:
                self.proc.kill()
            status = self.proc.poll()
            self.proc = None
            raise ServerDied(f"{self.name}: no answer to {list(op)} (exit status {status}, "
                             f"{'EOF' if ready else 'timeout'})\n{self.stderr()}")
        return json.loads(line)

    def request(self, *op):
        if self.proc is None:
            self._start()
        try:
            self.proc.stdin.write(json.dumps(op).encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.proc = None
            raise ServerDied(f"{self.name}: gone before {list(op)}\n{self.stderr()}") from None
        return self._reply(op)

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        self.log.close()


def sandboxed(platform: str, flags: tuple[str, ...], *args: str) -> list[str]:
    return [*EDGEVISOR, "do", f"--platform={platform}", *flags, "--", "python3", "-c",
            SERVER_SOURCE, *args]


def native_in_tmpfs(anchor: Path, *args: str) -> list[str]:
    """The server chrooted into a fresh tmpfs of a private mount namespace."""
    script = 'mount -t tmpfs -o mode=755 tmpfs "$1" && exec "$2" "$3" "$1" --chroot "${@:4}"'
    return ["unshare", "-m", "--propagation", "private", "bash", "-c", script, "native",
            str(anchor), PYTHON, SERVER, *args]


# --- 1. the state machine ------------------------------------------------------------------

# Few names, so that operations meet each other's results; `.` and `..` now and then.
NAMES = ("a", "b", "c")
component = st.sampled_from(NAMES * 4 + (".", ".."))


def _join(parts: list[str], absolute: bool, slash: bool) -> str:
    path = "/".join(parts) + ("/" if slash else "")
    return "@/" + path if absolute else path


# At most two `..` a path (or a symlink's target), so that only a chain of five symlinks,
# planted ever higher, could climb past the eight directories between BASE and ANCHOR (where
# the sandbox's /tmp or / and the native chroot would differ).
paths = st.builds(
    _join,
    st.lists(component, min_size=1, max_size=3).filter(lambda p: p.count("..") <= 2)
    | st.builds(lambda name: [name], st.sampled_from(NAMES)),
    st.sampled_from((False,) * 5 + (True,)),
    st.sampled_from((False,) * 8 + (True,)),
)
# Absolute targets only as "@/...": "/" itself means the sandbox's root on one side and the
# chroot on the other.
targets = paths | st.sampled_from(("..", "../a", "a/../../b", "@", "@/a/b", "c/d"))

# By name, so that a failing example reads well. O_PATH is left to the escape tests.
OPEN_FLAGS = {
    "RDONLY": os.O_RDONLY,
    "WRONLY": os.O_WRONLY,
    "WRONLY|CREAT": os.O_WRONLY | os.O_CREAT,
    "RDWR|CREAT|EXCL": os.O_RDWR | os.O_CREAT | os.O_EXCL,
    "WRONLY|TRUNC": os.O_WRONLY | os.O_TRUNC,
    "RDWR|CREAT|TRUNC": os.O_RDWR | os.O_CREAT | os.O_TRUNC,
    "RDONLY|DIRECTORY": os.O_RDONLY | os.O_DIRECTORY,
    "RDONLY|NOFOLLOW": os.O_RDONLY | os.O_NOFOLLOW,
    "RDONLY|DIRECTORY|NOFOLLOW": os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
    "WRONLY|CREAT|NOFOLLOW": os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW,
    "RDWR|CREAT|EXCL|NOFOLLOW": os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
    "CREAT|DIRECTORY": os.O_RDONLY | os.O_CREAT | os.O_DIRECTORY,
}


def machine(guest: OpServer, linux: OpServer):
    class FileSystemAgrees(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.both("reset")

        def both(self, *op):
            ours = guest.request(*op)
            theirs = linux.request(*op)
            assert ours == theirs, f"{list(op)}: sandbox {ours}, Linux {theirs}"
            return theirs

        @rule(p=paths, mode=st.sampled_from((0o755, 0o700)))
        def mkdir(self, p, mode):
            self.both("mkdir", p, mode)

        @rule(to=targets, p=paths)  # (`target` is rule()'s own keyword)
        def symlink(self, to, p):
            self.both("symlink", to, p)

        @rule(old=paths, new=paths, how=st.sampled_from(("plain", "noreplace", "exchange")))
        def rename(self, old, new, how):
            self.both("rename", old, new, how)

        @rule(p=paths)
        def unlink(self, p):
            self.both("unlink", p)

        @rule(p=paths)
        def rmdir(self, p):
            self.both("rmdir", p)

        @rule(old=paths, new=paths, follow=st.booleans())
        def link(self, old, new, follow):
            self.both("link", old, new, follow)

        @rule(p=paths, n=st.integers(0, 3000))
        def create(self, p, n):
            self.both("open", p, os.O_WRONLY | os.O_CREAT, 0o644)
            self.both("write", p, n)

        @rule(p=paths, flags=st.sampled_from(sorted(OPEN_FLAGS)),
              mode=st.sampled_from((0o644, 0o600)))
        def open(self, p, flags, mode):
            self.both("open", p, OPEN_FLAGS[flags], mode)

        @rule(p=paths, n=st.integers(1, 5000))
        def write(self, p, n):
            self.both("write", p, n)

        @rule(p=paths, n=st.integers(0, 100))
        def truncate(self, p, n):
            self.both("truncate", p, n)

        @rule(p=paths)
        def stat(self, p):
            self.both("stat", p)

        @rule(p=paths)
        def lstat(self, p):
            self.both("lstat", p)

        @rule(p=paths)
        def readlink(self, p):
            self.both("readlink", p)

        @rule(p=paths)
        def listdir(self, p):
            self.both("listdir", p)

        @rule(p=paths)
        def chdir(self, p):
            self.both("chdir", p)

        def teardown(self):
            self.both("tree")

    return FileSystemAgrees


STATEFUL = settings(max_examples=30, stateful_step_count=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@pytest.fixture
def servers():
    """make(argv, name) -> an OpServer, closed after the test."""
    made = []

    def make(argv, name):
        made.append(OpServer(argv, name))
        return made[-1]

    yield make
    for server in made:
        server.close()


def test_tmpfs_agrees_with_linux(platform, servers, tmp_path):
    guest = servers(sandboxed(platform, (), "/tmp/fsroot"), "sandbox /tmp")
    native = tmp_path / "native"
    native.mkdir()
    linux = servers(native_in_tmpfs(native), "native tmpfs")
    run_state_machine_as_test(machine(guest, linux), settings=STATEFUL)


def test_volume_agrees_with_linux(platform, servers, tmp_path):
    volume, native = tmp_path / "volume", tmp_path / "native"
    volume.mkdir()
    native.mkdir()
    guest = servers(sandboxed(platform, ("-v", f"{volume}:/w"), "/w"), "sandbox volume")
    linux = servers([PYTHON, SERVER, str(native), "--chroot"], "native directory")
    run_state_machine_as_test(machine(guest, linux), settings=STATEFUL)
    # What the guest left in the volume is on the host, as Linux left it in its directory.
    assert host_tree(volume, "/w") == host_tree(native, "/")


def host_tree(top: Path, guest_top: str) -> list:
    """The volume's tree as seen from the host, symlink targets as the guest wrote them."""
    server = Server(guest_top)
    server.anchor = str(top)
    return server.op_tree()


# --- 2. no resolution leaves a mount's root --------------------------------------------------

HOST_SECRET = "HOST-SECRET"
DIRS = ("", "d1", "d1/d2", "d1/d2/d3", "d4")
LINKS = {
    "s_up": "..", "s_upup": "../..", "s_root": "/", "s_abs": "/v/d1", "s_abs_out": "/v/../..",
    "s_chain": "s_up/../s_upup", "d1/s_back": "../d4", "d1/d2/s_far": "../../../../..",
    "d1/d2/d3/s_self_up": "../../../s_up", "d4/s_dotdot_v": "../../v/d1/../..",
    "s_loop": "s_loop2", "s_loop2": "s_loop", "d1/s_rel_abs": "/../../v/../v/d1/d2",
}
HOST_LINKS = ("s_host", "s_host_secret", "d4/s_host_parent")  # made with the host's paths
ELEMENTS = ("..", "..", ".", "d1", "d2", "d3", "d4", "v", "marker", "f1", "secret",
            *sorted({name.rsplit("/", 1)[-1] for name in (*LINKS, *HOST_LINKS)}))
STARTS = ("/v", "/v/d1", "/v/d1/d2/d3", "/v/d4", "/")


def build_resolution_tree(host: Path) -> Path:
    """HOST/vol (the volume) beside HOST/secret and HOST/marker, which must never be read."""
    vol = host / "vol"
    (host / "secret").parent.mkdir(parents=True, exist_ok=True)
    (host / "secret").write_text(HOST_SECRET)
    (host / "marker").write_text("HOST-MARKER")
    for d in DIRS:
        (vol / d).mkdir(parents=True, exist_ok=True)
        (vol / d / "marker").write_text("/v/" + d if d else "/v")
    (vol / "f1").write_text("file /v/f1")
    for name, target in LINKS.items():
        (vol / name).symlink_to(target)
    (vol / "s_host").symlink_to(str(host))
    (vol / "s_host_secret").symlink_to(str(host / "secret"))
    (vol / "d4/s_host_parent").symlink_to(str(host) + "/vol/../marker")
    return vol


LEADS = ("", "", "", "/", "/v/", "/../")


def walk(linux: OpServer, choose, start: str, lead: str, steps: int) -> str:
    """A path from `start` that mostly names what exists where it has got to (as the native
    server, chrooted into the same tree, lists it), with `..`, `.` and any name now and then."""
    parts = []
    for _ in range(steps):
        so_far = lead + "/".join(parts)
        here = linux.request("resolve", start, so_far or ".")[1]["realpath"]
        listing = linux.request("listdir", here)
        names = sorted(set(listing[1]) & set(ELEMENTS)) if listing[0] == "ok" else []
        kind = choose(("listed",) * 4 + ("up", "up", "dot", "any"))
        if kind == "listed" and names:
            parts.append(choose(names))
        elif kind == "up":
            parts.append("..")
        elif kind == "dot":
            parts.append(".")
        else:
            parts.append(choose(ELEMENTS))
    return lead + "/".join(parts)


def jailed(tmp_path: Path, vol: Path) -> Path:
    """A directory holding only a copy of the volume at v/, for a native chroot."""
    jail = tmp_path / "jail"
    shutil.copytree(vol, jail / "v", symlinks=True)
    return jail


@pytest.fixture
def resolution(platform, servers, tmp_path):
    """(sandboxed server, native server, host dir): the sandbox has the tree as a volume at
    /v of the host's root; the native server is chrooted into a copy."""
    host = tmp_path / "host"
    vol = build_resolution_tree(host)
    jail = jailed(tmp_path, vol)
    guest = servers(sandboxed(platform, ("-v", f"{vol}:/v"), "/", "--no-reset"),
                    "sandbox resolver")
    linux = servers([PYTHON, SERVER, str(jail), "--chroot", "--no-reset"], "native resolver")
    return guest, linux, host


def test_no_resolution_leaves_a_mount(resolution):
    guest, linux, host = resolution

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(start=st.sampled_from(STARTS), lead=st.sampled_from(LEADS),
           steps=st.integers(1, 8), data=st.data())
    def resolves_alike(start, lead, steps, data):
        path = walk(linux, lambda options: data.draw(st.sampled_from(options)), start, lead,
                    steps)
        ours = guest.request("resolve", start, path)
        theirs = linux.request("resolve", start, path)
        assert ours[0] == "ok", ours
        for field in ("marker", "file"):
            got = ours[1][field]
            assert not (got[0] == "ok" and "HOST-" in got[1]), (start, path, ours)
        # The chroot has no /proc: the descriptor's name is the canonical path instead.
        fd = ours[1].pop("fd")
        theirs[1].pop("fd")
        if fd[0] == "ok":
            assert fd[1] == ours[1]["realpath"], (start, path, ours)
        assert ours == theirs, f"from {start}: {path!r}: sandbox {ours}, Linux {theirs}"

    resolves_alike()
    assert (host / "secret").read_text() == HOST_SECRET


def test_readlink_f_stays_inside(platform, servers, tmp_path):
    """busybox readlink -f over a batch of such paths: the same canonical names as in the
    native chroot, and none of them the host's."""
    import random

    rng = random.Random(1234)
    host = tmp_path / "host"
    vol = build_resolution_tree(host)
    jail = jailed(tmp_path, vol)
    linux = servers([PYTHON, SERVER, str(jail), "--chroot", "--no-reset"], "native resolver")
    starts = ("/v/d1/d2", "/")
    batches = {start: [walk(linux, rng.choice, start, rng.choice(LEADS), rng.randint(1, 7))
                       for _ in range(100)] for start in starts}
    (jail / "bin").mkdir()
    shutil.copy(BUSYBOX, jail / "bin/busybox")
    script = ('bb=$1; cd "$2"; shift 2; for p; do printf "%s -> " "$p"; '
              '"$bb" readlink -f "$p" || echo "(fails)"; done')
    for start, batch in batches.items():
        r = subprocess.run([*EDGEVISOR, "do", f"--platform={platform}", "-v", f"{vol}:/v", "--",
                            BUSYBOX, "sh", "-c", script, "sh", BUSYBOX, start, *batch],
                           capture_output=True, text=True, timeout=300, check=False)
        n = subprocess.run(["chroot", str(jail), "/bin/busybox", "sh", "-c", script, "sh",
                            "/bin/busybox", start, *batch],
                           capture_output=True, text=True, timeout=60, check=False)
        assert n.returncode == 0, n.stderr
        assert r.returncode == 0, r.stderr
        assert str(host) not in r.stdout
        diff = [f"sandbox {a!r} / Linux {b!r}" for a, b in
                zip(r.stdout.splitlines(), n.stdout.splitlines()) if a != b]
        assert r.stdout == n.stdout, f"from {start}:\n" + "\n".join(diff[:20])
