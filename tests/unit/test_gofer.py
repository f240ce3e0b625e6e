"""The gofer on its own: the wire protocol, every operation against real host directories
through a real gofer process, read-only mounts, and the process's own confinement.

Every gofer started here must exit with status 0 when its socket closes: a syscall missing
from its seccomp allowlist would kill it with SIGSYS and fail the test that caused it."""

import contextlib
import errno
import fcntl
import os
import resource
import signal
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgevisor import abi
from edgevisor.gofer import (
    GoferClient,
    GoferProtocolError,
    fs,
    protocol,
    serve,
    start_gofer,
)
from edgevisor.gofer import allowlist
from edgevisor.gofer.allowlist import allowed_syscalls

ROOT = os.geteuid() == 0


@contextlib.contextmanager
def running_gofer(mounts):
    """(client, pid) of a gofer serving `mounts`; on exit, checks it ended cleanly."""
    pid, sock = start_gofer([(str(path), ro, False) for path, ro in mounts])  # private, as /tmp
    client = GoferClient(sock)
    try:
        yield client, pid
    finally:
        client.close()
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, \
            f"gofer ended with {status:#x} (signal {os.WTERMSIG(status) if os.WIFSIGNALED(status) else '-'})"


@pytest.fixture
def tree(tmp_path):
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    for root in (rw, ro):
        (root / "dir").mkdir(parents=True)
        (root / "file").write_bytes(b"content")
        (root / "link").symlink_to("file")
    return rw, ro


@pytest.fixture(params=["detached", "plain"])
def root_kind(request, monkeypatch):
    """The two ways the gofer holds a root: a detached clone of the host tree (with
    CAP_SYS_ADMIN; the kernel then refuses writes to read-only mounts too), or the host
    directory itself, where the gofer's own checks are all that stand (an unprivileged gofer).
    Roots are opened before the fork, so patching here reaches the gofer."""
    if request.param == "detached" and not ROOT:
        pytest.skip("cloning a mount needs CAP_SYS_ADMIN")
    if request.param == "plain":
        def refuse(*args):
            raise OSError(errno.EPERM, "open_tree refused by the test")
        monkeypatch.setattr(fs.hostcalls, "open_tree", refuse)
    return request.param


@pytest.fixture
def gofer(tree, root_kind):
    rw, ro = tree
    with running_gofer([(rw, False), (ro, True)]) as (client, _):
        yield client


RW, RO = 0, 1


def errno_of(call, *args) -> int:
    """The errno of OSError that call(*args) must raise."""
    with pytest.raises(OSError) as info:
        call(*args)
    return info.value.errno


# The protocol, without a process.

SAMPLES = {
    "i": st.integers(-2**63, 2**63 - 1),
    "u": st.integers(0, 2**64 - 1),
    "p": st.binary(max_size=300).filter(lambda b: b"\0" not in b),
    "b": st.binary(max_size=300),
}


@given(data=st.data())
def test_every_request_round_trips(data):
    op = data.draw(st.sampled_from(sorted(protocol.OPS.values(), key=lambda o: o.code)))
    args = [data.draw(SAMPLES[kind]) for kind in op.args]
    request_id = data.draw(st.integers(0, 2**32 - 1))
    assert protocol.decode_request(protocol.encode_request(request_id, op, args)) == (request_id, op, args)
    results = [data.draw(SAMPLES[kind]) for kind in op.results]
    assert protocol.decode_reply(protocol.encode_ok(request_id, op, results), op) == (request_id, protocol.OK, results)


def test_error_replies_round_trip():
    op = protocol.OPS["stat"]
    assert protocol.decode_reply(protocol.encode_errno(7, errno.ENOENT), op) == (7, protocol.ERRNO, [errno.ENOENT])
    assert protocol.decode_reply(protocol.encode_protocol_error(0, "bad"), op) == (0, protocol.PROTOCOL, [b"bad"])


@given(st.binary(max_size=200))
def test_decoding_arbitrary_bytes_fails_only_with_protocol_errors(data):
    try:
        protocol.decode_request(data)
    except protocol.ProtocolError:
        pass
    for op in protocol.OPS.values():
        try:
            protocol.decode_reply(data, op)
        except protocol.ProtocolError:
            pass


def _stat_request(path=b"x", request_id=1) -> bytes:
    return protocol.encode_request(request_id, protocol.OPS["stat"], [0, path, 1])


@pytest.mark.parametrize("message, reason", [
    (b"", "shorter than its header"),
    (_stat_request()[:-1], "bad message header"),  # length field disagrees
    (_stat_request() + b"\0", "bad message header"),
    (_stat_request()[:10] + b"\1\0" + _stat_request()[12:], "bad message header"),  # pad
    (protocol.HEADER.pack(12, 1, 999, 0), "unknown operation"),
    (protocol.HEADER.pack(12, 1, 2, 0), "ends inside"),
    (protocol.HEADER.pack(28, 1, 2, 0) + b"\0" * 8 + b"\xff\xff\0\0" + b"\0" * 4, "past the end"),
])
def test_malformed_requests_are_protocol_errors(message, reason):
    with pytest.raises(protocol.ProtocolError, match=reason):
        protocol.decode_request(message)


def test_paths_are_bounded_and_without_nul():
    op = protocol.OPS["stat"]
    for path in (b"a\0b", b"a" * (abi.PATH_MAX + 1)):
        with pytest.raises(protocol.ProtocolError):
            protocol.encode_request(1, op, [0, path, 1])
        body = protocol.struct.pack("=qI", 0, len(path)) + path + protocol.struct.pack("=q", 1)
        with pytest.raises(protocol.ProtocolError, match="NUL or exceeds"):
            protocol.decode_request(protocol.HEADER.pack(12 + len(body), 1, op.code, 0) + body)


def test_messages_are_bounded():
    op = protocol.OPS["setxattr"]
    with pytest.raises(protocol.ProtocolError, match="exceeds"):
        protocol.encode_request(1, op, [0, b"f", b"user.a", b"x" * protocol.MAX_MESSAGE, 0, 1])
    with pytest.raises(protocol.ProtocolError, match="exceeds"):
        protocol.decode_request(b"\0" * (protocol.MAX_MESSAGE + 1))


@given(st.lists(st.tuples(st.binary(min_size=1, max_size=40).filter(lambda n: b"/" not in n and b"\0" not in n),
                          st.integers(0, 2**64 - 1), st.integers(0, 255), st.integers(-2**63, 2**63 - 1))))
def test_directory_entries_round_trip(raw):
    entries = [protocol.DirEntry(*e) for e in raw]
    assert protocol.unpack_dirents(protocol.pack_dirents(entries)) == entries


# Every operation through a real gofer.

def test_open_creates_and_donates_a_descriptor(gofer, tree):
    rw, _ = tree
    fd = gofer.open(RW, b"new", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o640)
    try:
        os.write(fd, b"written through the gofer")
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        assert not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK  # used to open, then cleared
    finally:
        os.close(fd)
    assert (rw / "new").read_bytes() == b"written through the gofer"
    assert stat.S_IMODE((rw / "new").stat().st_mode) == 0o640  # the gofer's umask is 0
    fd = gofer.open(RW, b"file", os.O_RDONLY)
    try:
        assert os.read(fd, 100) == b"content"
        assert os.fstat(fd).st_ino == (rw / "file").stat().st_ino
    finally:
        os.close(fd)


def test_open_flags(gofer, tree):
    rw, _ = tree
    assert errno_of(lambda: gofer.open(RW, b"file", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)) == errno.EEXIST
    assert errno_of(lambda: gofer.open(RW, b"file", os.O_RDONLY | os.O_DIRECTORY)) == errno.ENOTDIR
    assert errno_of(lambda: gofer.open(RW, b"link", os.O_RDONLY | os.O_NOFOLLOW)) == errno.ELOOP
    assert errno_of(lambda: gofer.open(RW, b"missing", os.O_RDONLY)) == errno.ENOENT
    assert errno_of(lambda: gofer.open(RW, b"", os.O_RDONLY)) == errno.ENOENT
    assert errno_of(lambda: gofer.open(RW, b"file", -1)) == errno.EINVAL
    assert errno_of(lambda: gofer.open(7, b"file", os.O_RDONLY)) == errno.EINVAL  # no such mount
    fd = gofer.open(RW, b"link", os.O_PATH | os.O_NOFOLLOW)
    assert stat.S_ISLNK(os.fstat(fd).st_mode)
    os.close(fd)
    fd = gofer.open(RW, b"dir", os.O_RDONLY | os.O_DIRECTORY | os.O_NONBLOCK)
    assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK  # kept when asked for
    os.close(fd)
    os.close(gofer.open(RW, b"file", os.O_WRONLY | os.O_TRUNC))
    assert (rw / "file").read_bytes() == b""
    fd = gofer.open(RW, b"dir", os.O_TMPFILE | os.O_RDWR, 0o600)
    assert os.fstat(fd).st_nlink == 0
    os.close(fd)


def test_opening_a_fifo_never_blocks_the_gofer(gofer, tree):
    rw, _ = tree
    os.mkfifo(rw / "fifo")
    reader = gofer.open(RW, b"fifo", os.O_RDONLY)  # no writer: would block without O_NONBLOCK
    try:
        writer = gofer.open(RW, b"fifo", os.O_WRONLY)
        os.write(writer, b"through the fifo")
        assert os.read(reader, 100) == b"through the fifo"
        os.close(writer)
    finally:
        os.close(reader)


def _same_stat(ours, host: os.stat_result) -> None:
    for field in ("st_mode", "st_ino", "st_dev", "st_nlink", "st_uid", "st_gid", "st_size", "st_mtime_ns"):
        assert getattr(ours, field) == getattr(host, field), field


def test_stat(gofer, tree):
    rw, _ = tree
    _same_stat(gofer.stat(RW, b"link"), (rw / "file").stat())
    _same_stat(gofer.stat(RW, b"link", follow=False), (rw / "link").lstat())
    _same_stat(gofer.stat(RW, b"."), rw.stat())
    _same_stat(gofer.stat(RW, b"/"), rw.stat())
    assert errno_of(lambda: gofer.stat(RW, b"file/x")) == errno.ENOTDIR


def test_mkdir_and_mknod(gofer, tree):
    rw, _ = tree
    gofer.mkdir(RW, b"dir/sub", 0o751)
    assert stat.S_IMODE((rw / "dir/sub").stat().st_mode) == 0o751
    gofer.mkdir(RW, b"dir/sub2/", 0o700)  # a trailing slash is fine for a directory
    assert errno_of(lambda: gofer.mkdir(RW, b"dir", 0o700)) == errno.EEXIST
    assert errno_of(lambda: gofer.mkdir(RW, b"dir/.", 0o700)) == errno.EEXIST
    assert errno_of(lambda: gofer.mkdir(RW, b"/", 0o700)) == errno.EEXIST
    assert errno_of(lambda: gofer.mkdir(RW, b"nodir/sub", 0o700)) == errno.ENOENT
    gofer.mknod(RW, b"fifo", stat.S_IFIFO | 0o620)
    gofer.mknod(RW, b"sock", stat.S_IFSOCK | 0o600)
    gofer.mknod(RW, b"plain", stat.S_IFREG | 0o600)
    assert stat.S_ISFIFO((rw / "fifo").lstat().st_mode) and stat.S_IMODE((rw / "fifo").lstat().st_mode) == 0o620
    assert stat.S_ISSOCK((rw / "sock").lstat().st_mode)
    assert stat.S_ISREG((rw / "plain").lstat().st_mode)
    assert errno_of(lambda: gofer.mknod(RW, b"null", stat.S_IFCHR | 0o666)) == errno.EPERM
    assert errno_of(lambda: gofer.mknod(RW, b"disk", stat.S_IFBLK | 0o666)) == errno.EPERM
    assert errno_of(lambda: gofer.mknod(RW, b"what", 0o170000 | 0o666)) == errno.EINVAL
    assert errno_of(lambda: gofer.mknod(RW, b"fifo2/", stat.S_IFIFO | 0o600)) == errno.ENOTDIR


def test_unlink_and_rmdir(gofer, tree):
    rw, _ = tree
    gofer.unlink(RW, b"link")
    assert not os.path.lexists(rw / "link") and (rw / "file").exists()
    assert errno_of(lambda: gofer.unlink(RW, b"dir")) == errno.EISDIR
    assert errno_of(lambda: gofer.unlink(RW, b"file/")) == errno.ENOTDIR
    assert errno_of(lambda: gofer.rmdir(RW, b"file")) == errno.ENOTDIR
    assert errno_of(lambda: gofer.rmdir(RW, b".")) == errno.EBUSY
    assert errno_of(lambda: gofer.rmdir(RW, b"dir/..")) == errno.EBUSY
    (rw / "dir/inner").touch()
    assert errno_of(lambda: gofer.rmdir(RW, b"dir")) == errno.ENOTEMPTY
    (rw / "dir/inner").unlink()
    gofer.rmdir(RW, b"dir/")
    assert not (rw / "dir").exists()


def test_rename(gofer, tree):
    rw, _ = tree
    gofer.rename(RW, b"file", RW, b"dir/moved")
    assert (rw / "dir/moved").read_bytes() == b"content" and not (rw / "file").exists()
    (rw / "other").write_bytes(b"other")
    assert errno_of(lambda: gofer.rename(RW, b"other", RW, b"dir/moved", abi.RENAME_NOREPLACE)) == errno.EEXIST
    gofer.rename(RW, b"other", RW, b"dir/moved", abi.RENAME_EXCHANGE)
    assert (rw / "other").read_bytes() == b"content" and (rw / "dir/moved").read_bytes() == b"other"
    assert errno_of(lambda: gofer.rename(RW, b"other", RO, b"other")) == errno.EXDEV
    assert errno_of(lambda: gofer.rename(RW, b"other", RW, b"x", abi.RENAME_WHITEOUT)) == errno.EINVAL
    assert errno_of(lambda: gofer.rename(RW, b"/", RW, b"x")) == errno.EBUSY


def test_link(gofer, tree):
    rw, _ = tree
    gofer.link(RW, b"file", RW, b"dir/hard")
    assert (rw / "dir/hard").stat().st_ino == (rw / "file").stat().st_ino
    gofer.link(RW, b"link", RW, b"link2")  # the symlink itself, not its target
    assert os.readlink(rw / "link2") == "file" and (rw / "link2").lstat().st_ino == (rw / "link").lstat().st_ino
    assert errno_of(lambda: gofer.link(RW, b"file", RO, b"x")) == errno.EXDEV
    assert errno_of(lambda: gofer.link(RW, b"file", RW, b"dir/hard")) == errno.EEXIST


def test_symlink_and_readlink(gofer, tree):
    rw, _ = tree
    for i, target in enumerate([b"/etc/passwd", b"../../..", b"a b/\xff\xfe", b"x" * 4000]):
        gofer.symlink(RW, target, b"s%d" % i)
        assert os.readlink(os.fsencode(rw / f"s{i}")) == target
        assert gofer.readlink(RW, b"s%d" % i) == target
    assert errno_of(lambda: gofer.readlink(RW, b"file")) == errno.EINVAL
    assert errno_of(lambda: gofer.symlink(RW, b"", b"empty")) == errno.ENOENT
    assert errno_of(lambda: gofer.symlink(RW, b"x", b"file")) == errno.EEXIST


def test_listdir_pages_through_a_large_directory(gofer, tree):
    rw, _ = tree
    big = rw / "big"
    big.mkdir()
    names = {f"{i:04d}-".encode() + b"n" * 150 for i in range(800)}  # several 32 KiB pages
    for name in names:
        os.close(os.open(os.path.join(os.fsencode(big), name), os.O_CREAT | os.O_WRONLY))
    (big / "sub").mkdir()
    (big / "sym").symlink_to("nowhere")
    entries, cookie, eof = gofer.listdir(RW, b"big")
    assert not eof and entries and len(entries) < len(names)
    everything = gofer.listdir_all(RW, b"big")
    by_name = {e.name: e for e in everything}
    assert len(everything) == len(by_name) == len(names) + 2
    assert set(by_name) == names | {b"sub", b"sym"}
    assert by_name[b"sub"].type == 4 and by_name[b"sym"].type == 10 and by_name[next(iter(names))].type == 8
    assert by_name[b"sub"].ino == (big / "sub").stat().st_ino
    # A cookie resumes after its entry.
    middle = everything[len(everything) // 2]
    rest = []
    cookie, eof = middle.cookie, False
    while not eof:
        page, cookie, eof = gofer.listdir(RW, b"big", cookie)
        rest += page
    assert rest == everything[len(everything) // 2 + 1:]
    assert gofer.listdir_all(RW, b"dir") == []
    assert errno_of(lambda: gofer.listdir(RW, b"file")) == errno.ENOTDIR


def test_chmod_chown_utimens_truncate(gofer, tree):
    rw, _ = tree
    gofer.chmod(RW, b"link", 0o4711)  # follows the symlink, as chmod(2)
    assert stat.S_IMODE((rw / "file").stat().st_mode) == 0o4711
    gofer.utimens(RW, b"file", (1000, 5), (2000, 7))
    st_ = (rw / "file").stat()
    assert (st_.st_atime_ns, st_.st_mtime_ns) == (1000 * 10**9 + 5, 2000 * 10**9 + 7)
    gofer.utimens(RW, b"link", (0, abi.UTIME_OMIT), (3000, 0), follow=False)
    assert (rw / "link").lstat().st_mtime_ns == 3000 * 10**9 and (rw / "file").stat().st_mtime_ns == 2000 * 10**9 + 7
    assert errno_of(lambda: gofer.utimens(RW, b"file", (0, 10**9), (0, 0))) == errno.EINVAL
    gofer.truncate(RW, b"link", 3)
    assert (rw / "file").read_bytes() == b"con"
    gofer.truncate(RW, b"file", 10)
    assert (rw / "file").read_bytes() == b"con" + b"\0" * 7
    assert errno_of(lambda: gofer.truncate(RW, b"dir", 0)) == errno.EISDIR
    assert errno_of(lambda: gofer.truncate(RW, b"file", -1)) == errno.EINVAL
    os.mkfifo(rw / "fifo")
    assert errno_of(lambda: gofer.truncate(RW, b"fifo", 0)) == errno.EINVAL
    if ROOT:
        gofer.chown(RW, b"link", 1234, 5678)
        assert ((rw / "file").stat().st_uid, (rw / "file").stat().st_gid) == (1234, 5678)
        gofer.chown(RW, b"link", 42, -1, follow=False)
        assert (rw / "link").lstat().st_uid == 42 and (rw / "link").lstat().st_gid == 0
        assert (rw / "file").stat().st_uid == 1234
    assert errno_of(lambda: gofer.chown(RW, b"file", -2, 0)) == errno.EINVAL


def test_statfs(gofer, tree):
    rw, _ = tree
    ours, host = gofer.statfs(RW, b"dir"), os.statvfs(rw)
    assert (ours.f_bsize, ours.f_blocks, ours.f_files, ours.f_namelen) == \
        (host.f_bsize, host.f_blocks, host.f_files, host.f_namemax)
    assert ours.f_type != 0
    assert gofer.statfs(RO, b".").f_flags & os.ST_RDONLY


def test_user_xattrs(gofer, tree):
    rw, _ = tree
    try:
        os.setxattr(rw / "file", "user.probe", b"1")
        os.removexattr(rw / "file", "user.probe")
    except OSError as e:
        pytest.skip(f"no user xattrs on {rw}: {e}")
    gofer.setxattr(RW, b"link", b"user.colour", b"blue")  # follows the symlink
    assert os.getxattr(rw / "file", "user.colour") == b"blue"
    assert gofer.getxattr(RW, b"file", b"user.colour") == b"blue"
    gofer.setxattr(RW, b"dir", b"user.big", b"\xff" * 3000)
    assert gofer.getxattr(RW, b"dir", b"user.big") == b"\xff" * 3000
    assert errno_of(lambda: gofer.setxattr(RW, b"file", b"user.colour", b"red", os.XATTR_CREATE)) == errno.EEXIST
    assert errno_of(lambda: gofer.setxattr(RW, b"file", b"user.new", b"red", os.XATTR_REPLACE)) == errno.ENODATA
    assert gofer.listxattr(RW, b"file") == [b"user.colour"]
    gofer.removexattr(RW, b"file", b"user.colour")
    assert gofer.listxattr(RW, b"file") == []
    assert errno_of(lambda: gofer.getxattr(RW, b"file", b"user.colour")) == errno.ENODATA
    # A symlink itself cannot carry user.* attributes (Linux's rule).
    assert errno_of(lambda: gofer.getxattr(RW, b"link", b"user.colour", follow=False)) == errno.ENODATA
    assert errno_of(lambda: gofer.setxattr(RW, b"link", b"user.x", b"1", follow=False)) == errno.EPERM
    assert gofer.listxattr(RW, b"link", follow=False) == []
    assert errno_of(lambda: gofer.setxattr(RW, b"file", b"user.huge", b"x" * 65000)) in (errno.E2BIG, errno.EPROTO)


def test_other_xattr_namespaces_are_refused(gofer, tree):
    rw, _ = tree
    if ROOT:  # a host attribute the guest must neither see nor change
        os.setxattr(rw / "file", "trusted.host", b"secret")
    for name, read, write in [(b"trusted.host", errno.ENODATA, errno.EPERM),
                              (b"security.capability", errno.ENODATA, errno.EPERM),
                              (b"system.posix_acl_access", errno.EOPNOTSUPP, errno.EOPNOTSUPP),
                              (b"other.thing", errno.EOPNOTSUPP, errno.EOPNOTSUPP)]:
        assert errno_of(gofer.getxattr, RW, b"file", name) == read
        assert errno_of(gofer.setxattr, RW, b"file", name, b"x") == write
        assert errno_of(gofer.removexattr, RW, b"file", name) == write
    assert all(n.startswith(b"user.") for n in gofer.listxattr(RW, b"file"))
    if ROOT:
        assert os.getxattr(rw / "file", "trusted.host") == b"secret"


# Read-only mounts.

def snapshot(root: Path) -> dict:
    """Everything about a tree that a write could change (not atime, which reads may)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [".", *dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            st_ = os.lstat(path)
            data = None
            if stat.S_ISREG(st_.st_mode):
                data = Path(path).read_bytes()
            elif stat.S_ISLNK(st_.st_mode):
                data = os.readlink(path)
            xattrs = {} if stat.S_ISLNK(st_.st_mode) else {n: os.getxattr(path, n) for n in os.listxattr(path)}
            out[os.path.relpath(path, root)] = (st_.st_mode, st_.st_ino, st_.st_uid, st_.st_gid, st_.st_size,
                                                st_.st_nlink, st_.st_mtime_ns, st_.st_ctime_ns, data, xattrs)
    return out


def test_read_only_mount_refuses_every_write(gofer, tree):
    _, ro = tree
    before = snapshot(ro)
    writes = [
        lambda: gofer.open(RO, b"file", os.O_WRONLY),
        lambda: gofer.open(RO, b"file", os.O_RDWR),
        lambda: gofer.open(RO, b"file", os.O_RDONLY | os.O_TRUNC),
        lambda: gofer.open(RO, b"new", os.O_CREAT | os.O_RDONLY, 0o644),
        lambda: gofer.open(RO, b"dir", os.O_TMPFILE | os.O_RDWR, 0o600),
        lambda: gofer.mkdir(RO, b"newdir", 0o755),
        lambda: gofer.mknod(RO, b"fifo", stat.S_IFIFO | 0o600),
        lambda: gofer.unlink(RO, b"file"),
        lambda: gofer.unlink(RO, b"link"),
        lambda: gofer.rmdir(RO, b"dir"),
        lambda: gofer.rename(RO, b"file", RO, b"moved"),
        lambda: gofer.rename(RO, b"file", RO, b"dir", abi.RENAME_EXCHANGE),
        lambda: gofer.link(RO, b"file", RO, b"hard"),
        lambda: gofer.symlink(RO, b"file", b"sym"),
        lambda: gofer.chmod(RO, b"file", 0o777),
        lambda: gofer.chown(RO, b"file", 1, 1),
        lambda: gofer.utimens(RO, b"file", (1, 0), (1, 0)),
        lambda: gofer.truncate(RO, b"file", 0),
        lambda: gofer.setxattr(RO, b"file", b"user.x", b"1"),
        lambda: gofer.removexattr(RO, b"file", b"user.x"),
    ]
    for write in writes:
        assert errno_of(write) == errno.EROFS
    assert snapshot(ro) == before


def test_read_only_mount_still_reads(gofer):
    fd = gofer.open(RO, b"link", os.O_RDONLY)
    assert os.read(fd, 100) == b"content"
    os.close(fd)
    # O_CREAT of an existing file opens it, as on a read-only Linux mount; O_EXCL says EEXIST.
    os.close(gofer.open(RO, b"file", os.O_CREAT | os.O_RDONLY, 0o644))
    assert errno_of(lambda: gofer.open(RO, b"file", os.O_CREAT | os.O_EXCL | os.O_RDONLY, 0o644)) == errno.EEXIST
    assert gofer.stat(RO, b"file").st_size == 7
    assert gofer.readlink(RO, b"link") == b"file"
    assert {e.name for e in gofer.listdir_all(RO, b".")} == {b"dir", b"file", b"link"}
    assert gofer.listxattr(RO, b"file") == []


def test_read_only_mount_is_read_only_in_the_kernel_too(gofer, tree, root_kind):
    """A descriptor donated from a read-only mount cannot change the host file either."""
    if root_kind == "plain":
        pytest.skip("only a detached read-only clone makes the kernel refuse")
    _, ro = tree
    before = snapshot(ro)
    fd = gofer.open(RO, b"file", os.O_RDONLY)
    try:
        for write in (lambda: os.fchmod(fd, 0o777), lambda: os.fchown(fd, 1, 1),
                      lambda: os.setxattr(fd, "user.x", b"1"), lambda: os.utime(fd, (1, 1))):
            assert errno_of(write) == errno.EROFS
    finally:
        os.close(fd)
    assert snapshot(ro) == before


# The process.

def test_gofer_process_is_confined(tree):
    rw, ro = tree
    with running_gofer([(rw, False), (ro, True)]) as (client, pid):
        client.stat(RW, b".")
        status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":\t" in line)
        assert status["NoNewPrivs"].strip() == "1"
        assert status["Seccomp"].strip() == "2"
        assert int(status["PPid"]) == os.getpid()
        if ROOT:  # the gofer is not dumpable, so only a privileged reader sees its fds
            fds = {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
            assert [fds[fd] for fd in (0, 1, 2)] == ["/dev/null"] * 3
            rest = sorted(fd for fd in fds if fd > 2)
            assert len(rest) == 3  # the socket and the two roots, nothing else
            assert sum(fds[fd].startswith("socket:") for fd in rest) == 1


def test_allowlist_is_small_and_has_no_escape_hatches():
    allowed = set(allowed_syscalls())
    assert len(allowed) <= 40
    for name in ("execve", "execveat", "socket", "connect", "ptrace", "open", "openat", "mount",
                 "open_tree", "chroot", "setuid", "clone", "fork", "kill", "process_vm_writev"):
        assert name not in allowed


def test_gofer_dies_with_its_parent(tmp_path):
    # The parent here is a separate Python that starts a gofer, reports its pid and is killed.
    script = ("import os, sys, time\n"
              "from edgevisor.gofer import start_gofer\n"
              f"pid, sock = start_gofer([({str(tmp_path)!r}, False)])\n"
              "print(pid, flush=True)\n"
              "time.sleep(60)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        gofer_pid = int(parent.stdout.readline())
        assert Path(f"/proc/{gofer_pid}").exists()
    finally:
        parent.kill()
        parent.wait()
    for _ in range(200):
        try:
            state = Path(f"/proc/{gofer_pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            break
        if state in ("Z", "X"):  # dead, waiting for init to reap it
            break
        threading.Event().wait(0.05)
    else:
        os.kill(gofer_pid, signal.SIGKILL)
        pytest.fail("the gofer outlived its parent")


def test_serve_in_process(tree):
    """serve() is the gofer's loop without the process around it (no fork, no filter)."""
    rw, ro = tree
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    umask = os.umask(0o22)
    thread = threading.Thread(target=serve, args=(theirs, [(str(rw), False), (str(ro), True)]))
    thread.start()
    try:
        client = GoferClient(ours)
        assert client.stat(RW, b"file").st_size == 7
        assert errno_of(lambda: client.mkdir(RO, b"x", 0o777)) == errno.EROFS
        client.mkdir(RW, b"x", 0o777)
        assert stat.S_IMODE((rw / "x").stat().st_mode) == 0o777  # serve() took the umask over
        client.close()
        thread.join(10)
        assert not thread.is_alive()  # ended with the socket
    finally:
        os.umask(umask)
        theirs.close()


def test_start_gofer_reports_a_bad_mount_in_the_caller(tmp_path):
    with pytest.raises(FileNotFoundError):
        start_gofer([(str(tmp_path / "missing"), False)])
    (tmp_path / "file").touch()
    with pytest.raises(NotADirectoryError):
        start_gofer([(str(tmp_path / "file"), True)])


def test_client_is_thread_safe(gofer, tree):
    rw, _ = tree
    for i in range(8):
        (rw / f"f{i}").write_bytes(b"x" * i)
    failures = []

    def worker(i):
        try:
            for _ in range(100):
                assert gofer.stat(RW, b"f%d" % i).st_size == i
                fd = gofer.open(RW, b"f%d" % i, os.O_RDONLY)
                assert os.read(fd, 100) == b"x" * i
                os.close(fd)
        except Exception as e:  # noqa: BLE001 - reported below
            failures.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_protocol_errors_reach_the_client_as_oserrors(gofer):
    with pytest.raises(GoferProtocolError) as info:
        gofer.stat(RW, b"a\0b")
    assert info.value.errno == errno.EPROTO


def test_gofer_survives_a_mixed_workload(tree):
    """The gofer survives a workload touching every operation, errors included; running_gofer
    then checks it exited 0 rather than being killed by its own filter."""
    rw, ro = tree
    with running_gofer([(rw, False), (ro, True)]) as (g, _):
        for name, args in [("stat", (RW, b"nope")), ("open", (RO, b"file", os.O_WRONLY)),
                           ("readlink", (RW, b"file")), ("listdir", (RW, b"file")),
                           ("getxattr", (RW, b"file", b"user.none")), ("rmdir", (RW, b"file"))]:
            with pytest.raises(OSError):
                getattr(g, name)(*args)
        for i in range(200):  # enough churn for the allocator to grow and shrink
            g.listdir_all(RW, b".")
            g.statfs(RW, b".")
            os.close(g.open(RW, b"file", os.O_RDONLY))
            if i % 50 == 0:
                with contextlib.suppress(OSError):  # where the host has no user xattrs
                    g.setxattr(RW, b"dir", b"user.v", os.urandom(2000))


def test_a_full_descriptor_table_is_emfile_and_the_gofer_keeps_serving(gofer):
    """A descriptor the kernel cannot install in the Sentry (its RLIMIT_NOFILE reached) is
    open(2)'s EMFILE, not a protocol error; the next request, with room again, works."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held = []
    try:
        lowest = os.open("/", os.O_PATH | os.O_CLOEXEC)
        os.close(lowest)
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest + 8, hard))
        with pytest.raises(OSError) as info:
            while len(held) < 64:
                held.append(gofer.open(RW, b"file", os.O_RDONLY))
        assert info.value.errno == errno.EMFILE and not isinstance(info.value,
                                                                   GoferProtocolError)
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    os.close(gofer.open(RW, b"file", os.O_RDONLY))


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=(1 << 20) - 1))
def test_the_gofer_program_for_a_socket_is_libseccomps_own(sock_fd):
    """The front end builds the gofer's program once, with a placeholder for the socket's
    descriptor, which the Sentry sets (it may import nothing by then: a venv under /tmp is
    out of its view). The result is exactly what libseccomp compiles for that descriptor."""
    assert allowlist.for_socket(allowlist.template(), sock_fd) == allowlist._compile(sock_fd)

