"""Attempts to make the gofer reach host files outside a mount's root, or to crash it.

The tree: ROOT holds its own etc/passwd and etc/hostname and symlinks that point out in every
way (absolute, relative, to "/", to the outside directory's real host path, loops, a magic link
path); OUTSIDE, beside it, holds a secret. Whatever a path does, an opened or stat'ed file must
be one of ROOT's (compared by st_dev/st_ino), and OUTSIDE must be untouched."""

import array
import contextlib
import ctypes
import errno
import fcntl
import os
import signal
import socket
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgevisor import abi
from edgevisor.gofer import protocol, start_gofer
from edgevisor.gofer.allowlist import build_filter
from edgevisor.gofer.hostcalls import openat2, renameat2
from edgevisor.platform.linux import prctl, seccomp_load

from ..unit import test_gofer as unit
from ..unit.test_gofer import running_gofer, snapshot

root_kind = unit.root_kind  # the same fixture: escapes are tried against both kinds of root

ROOT_USER = os.geteuid() == 0
CHAIN = 45  # symlinks in a row, more than the kernel's 40


@pytest.fixture
def layout(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret").write_bytes(b"host secret")
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_bytes(b"inside passwd")
    (root / "etc/hostname").write_bytes(b"inside hostname")
    (root / "d/etc").mkdir(parents=True)
    (root / "d/etc/hostname").write_bytes(b"d hostname")
    links = {"abs": "/etc/passwd", "rel": "../../../../../../../etc/passwd", "up": "../..", "slash": "/",
             "out_abs": str(outside / "secret"), "out_dir": str(outside), "out_rel": "../outside/secret",
             "loop_a": "loop_b", "loop_b": "loop_a", "self": "self", "proc_root": "/proc/self/root",
             "dangling": "/made_by_dangling"}
    links.update({f"chain{i}": f"chain{i + 1}" for i in range(CHAIN)})
    (root / f"chain{CHAIN}").write_bytes(b"end of chain")
    for name, target in links.items():
        (root / name).symlink_to(target)
    return root, outside


def inside(root: Path) -> set[tuple[int, int]]:
    ids = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [".", *dirnames, *filenames]:
            st_ = os.lstat(os.path.join(dirpath, name))
            ids.add((st_.st_dev, st_.st_ino))
    return ids


def read(client, mount, path) -> bytes:
    fd = client.open(mount, path, os.O_RDONLY)
    try:
        return os.read(fd, 1000)
    finally:
        os.close(fd)


def errno_of(call, *args) -> int:
    """The errno of OSError that call(*args) must raise."""
    with pytest.raises(OSError) as info:
        call(*args)
    return info.value.errno


@pytest.fixture
def gofer(layout, root_kind):
    root, outside = layout
    before = snapshot(outside)
    with running_gofer([(root, False)]) as (client, _):
        yield client
    assert snapshot(outside) == before


def test_dotdot_stops_at_the_root(gofer, layout):
    assert read(gofer, 0, b"../../../../etc/passwd") == b"inside passwd"
    assert read(gofer, 0, b"/../../etc/../../etc/hostname") == b"inside hostname"
    assert read(gofer, 0, b"d/../../../etc/hostname") == b"inside hostname"
    assert errno_of(lambda: gofer.open(0, b"../outside/secret", os.O_RDONLY)) == errno.ENOENT
    assert errno_of(lambda: gofer.stat(0, b"../outside")) == errno.ENOENT
    gofer.mkdir(0, b"../../made", 0o755)  # lands in the root
    assert (layout[0] / "made").is_dir() and not (layout[0].parent / "made").exists()


def test_symlinks_pointing_out_resolve_inside(gofer, layout):
    root, _ = layout
    assert read(gofer, 0, b"abs") == b"inside passwd"  # /etc/passwd is ROOT/etc/passwd
    assert read(gofer, 0, b"rel") == b"inside passwd"
    assert read(gofer, 0, b"up/etc/passwd") == b"inside passwd"
    assert read(gofer, 0, b"slash/etc/hostname") == b"inside hostname"
    assert read(gofer, 0, b"chain5") == b"end of chain"  # 40 links is the limit, not fewer
    for path in (b"out_abs", b"out_rel", b"out_dir/secret", b"proc_root/etc/passwd", b"dangling"):
        assert errno_of(gofer.open, 0, path, os.O_RDONLY) == errno.ENOENT
        assert errno_of(gofer.stat, 0, path) == errno.ENOENT
    assert {e.name for e in gofer.listdir_all(0, b"slash")} == set(os.listdir(os.fsencode(root)))
    # Creating through them creates inside, or nothing.
    os.close(gofer.open(0, b"slash/created", os.O_CREAT | os.O_WRONLY, 0o600))
    assert (root / "created").exists()
    assert errno_of(lambda: gofer.open(0, b"out_abs", os.O_CREAT | os.O_WRONLY, 0o600)) == errno.ENOENT
    assert errno_of(lambda: gofer.mkdir(0, b"out_dir/new", 0o700)) == errno.ENOENT
    assert errno_of(lambda: gofer.symlink(0, b"x", b"out_dir/new")) == errno.ENOENT
    assert errno_of(lambda: gofer.setxattr(0, b"out_abs", b"user.x", b"1")) == errno.ENOENT
    assert errno_of(lambda: gofer.chmod(0, b"out_abs", 0o777)) == errno.ENOENT
    assert errno_of(lambda: gofer.truncate(0, b"out_rel", 0)) == errno.ENOENT
    # A dangling symlink followed by O_CREAT creates its target beneath the root.
    os.close(gofer.open(0, b"dangling", os.O_CREAT | os.O_WRONLY, 0o600))
    assert (root / "made_by_dangling").exists() and not Path("/made_by_dangling").exists()


def test_symlink_loops_are_eloop(gofer):
    for path in (b"loop_a", b"self", b"self/x", b"chain0", b"loop_b/etc"):
        assert errno_of(gofer.open, 0, path, os.O_RDONLY) == errno.ELOOP
        assert errno_of(gofer.stat, 0, path) == errno.ELOOP
    assert stat.S_ISLNK(gofer.stat(0, b"loop_a", follow=False).st_mode)


def test_magic_links_are_refused(layout):
    """With a real procfs as a mount, its magic links (root, cwd, exe, fd/N) would lead
    anywhere on the host: RESOLVE_NO_MAGICLINKS makes every one ELOOP."""
    root, _ = layout
    with running_gofer([(root, False), ("/proc", True)]) as (client, _):
        for path in (b"self/root/etc/passwd", b"self/root", b"self/cwd", b"self/exe", b"self/fd/0",
                     b"thread-self/root/etc"):
            assert errno_of(client.open, 1, path, os.O_RDONLY) == errno.ELOOP, path
            assert errno_of(client.stat, 1, path) == errno.ELOOP, path
        # Another process's links may be refused earlier, by procfs's own ptrace check.
        assert errno_of(lambda: client.open(1, b"1/root/etc/passwd", os.O_RDONLY)) in (errno.ELOOP, errno.EACCES)
        assert stat.S_ISLNK(client.stat(1, b"self/root", follow=False).st_mode)
        assert b"Seccomp" in read(client, 1, b"self/status")  # plain files still open
        assert errno_of(lambda: client.open(1, b"self/status", os.O_WRONLY)) == errno.EROFS


def test_link_cannot_pull_in_a_file_from_outside(gofer, layout):
    root, outside = layout
    assert errno_of(lambda: gofer.link(0, b"../outside/secret", 0, b"stolen")) == errno.ENOENT
    assert errno_of(lambda: gofer.link(0, b"out_dir/secret", 0, b"stolen")) == errno.ENOENT
    gofer.link(0, b"out_abs", 0, b"stolen")  # links the symlink itself
    assert (root / "stolen").lstat().st_ino == (root / "out_abs").lstat().st_ino
    assert errno_of(lambda: gofer.open(0, b"stolen", os.O_RDONLY)) == errno.ENOENT
    assert (outside / "secret").stat().st_nlink == 1


def test_rename_and_unlink_stay_inside(gofer, layout):
    root, outside = layout
    for new in (b"../outside/moved", b"out_dir/moved", b"up/../../outside/moved"):
        with pytest.raises(OSError):
            gofer.rename(0, b"etc/passwd", 0, new)
        assert (root / "etc/passwd").exists()
    gofer.rename(0, b"etc/passwd", 0, b"slash/moved")  # the symlink parent is the root
    assert (root / "moved").read_bytes() == b"inside passwd"
    assert errno_of(lambda: gofer.unlink(0, b"../outside/secret")) == errno.ENOENT
    assert errno_of(lambda: gofer.rmdir(0, b"out_dir/dir")) == errno.ENOENT
    gofer.unlink(0, b"out_abs")  # removes the symlink, not its target
    assert not os.path.lexists(root / "out_abs") and (outside / "secret").exists()


def test_walks_stay_inside_while_a_directory_is_swapped_for_a_symlink(gofer, layout):
    """A host thread exchanges ROOT/d with a symlink to "/" (and one to the outside directory's
    real path) as fast as it can, while the gofer opens paths beneath d: every file opened is
    one of ROOT's."""
    root, _ = layout
    (root / "to_root").symlink_to("/")
    (root / "to_outside").symlink_to(layout[1])
    allowed = inside(root)
    stop = threading.Event()
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY)

    def swapper(other: bytes):
        while not stop.is_set():
            renameat2(root_fd, b"d", root_fd, other, abi.RENAME_EXCHANGE)

    opened = failed = 0
    for other in (b"to_root", b"to_outside"):
        stop.clear()
        thread = threading.Thread(target=swapper, args=(other,))
        thread.start()
        try:
            for i in range(600):
                path = (b"d/etc/hostname", b"d/../etc/hostname", b"d/../../../d/etc/hostname",
                        b"d/etc/../../etc/passwd")[i % 4]
                try:
                    fd = gofer.open(0, path, os.O_RDONLY)
                except OSError as e:
                    assert e.errno in (errno.ENOENT, errno.EAGAIN, errno.ENOTDIR), e
                    failed += 1
                    continue
                try:
                    st_ = os.fstat(fd)
                    assert (st_.st_dev, st_.st_ino) in allowed, path
                    assert os.read(fd, 100) in (b"inside hostname", b"d hostname", b"inside passwd")
                finally:
                    os.close(fd)
                opened += 1
        finally:
            stop.set()
            thread.join()
    os.close(root_fd)
    assert opened > 100


# Random paths: whatever the mix of names, ".", "..", slashes and symlinks, anything the gofer
# opens or stats is beneath the root, and anything it creates is too.

COMPONENTS = [b"etc", b"passwd", b"hostname", b"d", b"outside", b"secret", b"abs", b"rel", b"up",
              b"slash", b"out_abs", b"out_dir", b"out_rel", b"loop_a", b"proc_root", b"chain40",
              b"dangling", b"tmp", b"new", b".", b"..", b""]
paths = st.tuples(st.booleans(), st.lists(st.sampled_from(COMPONENTS), min_size=1, max_size=8)).map(
    lambda t: (b"/" if t[0] else b"") + b"/".join(t[1]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=paths)
def test_random_paths_stay_inside(gofer, layout, path):
    root, _ = layout
    allowed = inside(root)
    for flags in (os.O_RDONLY, os.O_PATH | os.O_NOFOLLOW, os.O_RDONLY | os.O_DIRECTORY):
        try:
            fd = gofer.open(0, path, flags)
        except OSError:
            continue
        try:
            st_ = os.fstat(fd)
            assert (st_.st_dev, st_.st_ino) in allowed
        finally:
            os.close(fd)
    for follow in (True, False):
        with contextlib.suppress(OSError):
            st_ = gofer.stat(0, path, follow)
            assert (st_.st_dev, st_.st_ino) in allowed
    with contextlib.suppress(OSError):
        gofer.mkdir(0, path, 0o700)
        made = gofer.stat(0, path, follow=False)
        assert (made.st_dev, made.st_ino) in inside(root)
        gofer.rmdir(0, path)


# Malformed traffic: a protocol error reply or the end of the session, never a dead gofer.

@contextlib.contextmanager
def raw_gofer(root):
    pid, sock = start_gofer([(str(root), False)])
    try:
        yield sock, pid
    finally:
        sock.close()
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, hex(status)


def exchange(sock, message: bytes, fds=()) -> tuple[int, list]:
    rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    sock.sendmsg([message], rights)
    data, ancdata, _, _ = sock.recvmsg(protocol.MAX_MESSAGE + 1, socket.CMSG_SPACE(4 * 4))
    assert not ancdata
    _, kind, values = protocol.decode_reply(data, protocol.OPS["stat"])
    return kind, values


def still_serving(sock) -> None:
    kind, _ = exchange(sock, protocol.encode_request(9, protocol.OPS["stat"], [0, b".", 1]))
    assert kind == protocol.OK


@pytest.fixture
def raw(layout):
    with raw_gofer(layout[0]) as (sock, _):
        yield sock


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.one_of(st.binary(min_size=1, max_size=300),
                      st.builds(lambda op, body: protocol.HEADER.pack(12 + len(body), 5, op, 0) + body,
                                st.integers(0, 25), st.binary(max_size=100))))
def test_random_messages_get_a_reply(raw, junk):
    kind, _ = exchange(raw, junk)
    assert kind in (protocol.PROTOCOL, protocol.ERRNO, protocol.OK)
    still_serving(raw)


def test_malformed_and_oversized_messages(layout):
    with raw_gofer(layout[0]) as (sock, _):
        for message, reason in [
            (b"\1\2\3", b"shorter than its header"),
            (protocol.HEADER.pack(99, 1, 2, 0), b"bad message header"),
            (protocol.HEADER.pack(12, 1, 77, 0), b"unknown operation"),
            (protocol.encode_request(1, protocol.OPS["stat"], [0, b".", 1]) + b"x", b"bad message header"),
            (b"\0" * (protocol.MAX_MESSAGE + 1), b"exceeds"),
            (b"\0" * 150_000, b"exceeds"),
        ]:
            kind, values = exchange(sock, message)
            assert kind == protocol.PROTOCOL and reason in values[0], (message[:20], values)
            still_serving(sock)
        body = protocol.struct.pack("=qI", 0, 3) + b"a\0b" + protocol.struct.pack("=q", 1)
        kind, values = exchange(sock, protocol.HEADER.pack(12 + len(body), 3, 2, 0) + body)
        assert kind == protocol.PROTOCOL and b"NUL" in values[0]
        still_serving(sock)


def test_descriptors_sent_to_the_gofer_are_never_installed(layout):
    root, outside = layout
    with raw_gofer(root) as (sock, pid):
        still_serving(sock)  # past its start-up, which closes the parent's descriptors
        fds_before = len(os.listdir(f"/proc/{pid}/fd")) if ROOT_USER else None
        secret = os.open(outside / "secret", os.O_RDONLY)
        try:
            kind, values = exchange(sock, protocol.encode_request(1, protocol.OPS["stat"], [0, b".", 1]),
                                    fds=[secret, secret, secret])
        finally:
            os.close(secret)
        assert kind == protocol.PROTOCOL and b"no descriptors" in values[0]
        if ROOT_USER:
            assert len(os.listdir(f"/proc/{pid}/fd")) == fds_before
        still_serving(sock)


def test_an_empty_message_ends_the_session(layout):
    with raw_gofer(layout[0]) as (sock, _):
        sock.send(b"")
        assert sock.recv(100) == b""  # the gofer closed its end and exited (checked by raw_gofer)


# The gofer's seccomp filter, run by the kernel in a child that loads it.

def run_filtered(action) -> int:
    """Wait status of a child that loads the gofer's filter (for socket `a`) then runs action."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    other = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    program = build_filter(a.fileno())
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            prctl(abi.PR_SET_NO_NEW_PRIVS, 1)
            seccomp_load(program, 0)
            action(a, b, other)
            code = 0
        finally:
            os._exit(code)
    for s in (a, b, other):
        s.close()
    return os.waitpid(pid, 0)[1]


libc = ctypes.CDLL(None, use_errno=True)

FORBIDDEN = {
    "execve": lambda a, b, other: os.execv("/bin/true", ["true"]),
    "socket": lambda a, b, other: socket.socket(socket.AF_INET, socket.SOCK_STREAM),
    "connect": lambda a, b, other: other.connect("/dev/log"),
    "ptrace": lambda a, b, other: libc.ptrace(0, 0, None, None),
    "openat": lambda a, b, other: os.open("/etc/passwd", os.O_RDONLY),
    "kill": lambda a, b, other: os.kill(1, 0),
    "sendmsg on another socket": lambda a, b, other: other.sendmsg([b"x"]),
    "dup": lambda a, b, other: os.dup(a.fileno()),
    "fcntl F_SETFD": lambda a, b, other: fcntl.fcntl(a.fileno(), fcntl.F_SETFD, 0),
    "ioctl": lambda a, b, other: os.set_inheritable(a.fileno(), True),  # ioctl(FIONCLEX)
    "clone": lambda a, b, other: os.fork(),
}


@pytest.mark.parametrize("name", sorted(FORBIDDEN))
def test_filter_kills_forbidden_syscalls(name):
    status = run_filtered(FORBIDDEN[name])
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS, hex(status)


def test_filter_allows_the_gofer_work():
    def work(a, b, other):
        fd = openat2(abi.AT_FDCWD, b"/", os.O_PATH | os.O_CLOEXEC, 0, abi.RESOLVE_IN_ROOT)
        os.stat(fd)
        os.close(fd)
        a.sendmsg([b"hello"])
        big = bytearray(10_000_000)  # memory from the allocator, by mmap
        big[-1] = 1

    assert run_filtered(work) == 0
