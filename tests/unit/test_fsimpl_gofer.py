"""The gofer file system (sentry/fsimpl/gofer.py) through the VFS, against a real gofer over
real host directories, checked against what `os` sees there.

test_vfs_native.py also runs its kernel-oracle state machine over a GoferFS."""

import contextlib
import collections
import errno
import fcntl
import os
import stat
import subprocess
import time

import pytest

from edgevisor import abi
from edgevisor.gofer import GoferClient, start_gofer
from edgevisor.sentry import vfs
from edgevisor.sentry.fsimpl.gofer import Generation, GoferFS
from edgevisor.sentry.kernel.fs import FileSystem
from edgevisor.sentry.fsimpl.tmpfs import Tmpfs
from edgevisor.sentry.vfs import Credentials, FSContext, Kind, MountTable

ROOT = Credentials.root()
NOBODY = Credentials(65534, 65534)
ALICE = Credentials(1000, 1000, frozenset({50}))
IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="the gofer must be able to chown")


def fails(code, fn, *args, **kw):
    with pytest.raises(OSError) as info:
        fn(*args, **kw)
    assert info.value.errno == code, (errno.errorcode.get(info.value.errno), errno.errorcode[code])


class CountingClient(GoferClient):
    """Counts the requests made, to pin down what is cached."""

    calls = 0

    def _call(self, name, *args):
        self.calls += 1
        return super()._call(name, *args)


@contextlib.contextmanager
def running_gofer(mounts):
    pid, sock = start_gofer([(str(path), ro, False) for path, ro in mounts])  # private, as /tmp
    client = CountingClient(sock)
    try:
        yield client
    finally:
        client.close()
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"gofer ended with {status:#x}"


class World:
    """A mount table whose root is a GoferFS over `host`, and a task context on it."""

    def __init__(self, client, mount=0, *, exclusive=True, readonly=False, umask=0o022,
                 direct=False):
        self.generation = Generation()
        self.fs = GoferFS(client, mount, exclusive=exclusive, generation=self.generation,
                          direct=direct)
        self.table = MountTable(self.fs.root, readonly=readonly)
        self.ctx = FSContext(self.table.root.root, umask=umask)

    def syscall(self):
        """What the Sentry does at the start of each syscall."""
        self.generation.bump()

    def lookup(self, path, follow=True, creds=ROOT):
        return vfs.lookup(self.ctx, creds, None, path, follow=follow)

    def file(self, path, mode=0o644, creds=ROOT):
        return vfs.openat(self.ctx, creds, None, path, abi.O_CREAT | abi.O_WRONLY, mode)

    def mkdir(self, path, mode=0o755, creds=ROOT):
        return vfs.mkdirat(self.ctx, creds, None, path, mode)


@pytest.fixture
def host(tmp_path):
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    (ro / "dir").mkdir(parents=True)
    (ro / "file").write_bytes(b"read only")
    os.chmod(rw, 0o755)
    return rw, ro


@pytest.fixture
def client(host):
    with running_gofer([(host[0], False), (host[1], True)]) as c:
        yield c


@pytest.fixture
def w(client):
    return World(client)


def host_key(path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_dev, st.st_ino


# ---- the namespace operations, checked on the host ----

def test_names_made_and_removed_through_the_vfs_are_the_hosts(w, host):
    rw = host[0]
    w.mkdir(b"/a")
    w.mkdir(b"/a/b", 0o700)
    f = w.file(b"/a/f", 0o640)
    vfs.mknodat(w.ctx, ROOT, None, b"/a/fifo", Kind.FIFO, 0o600)
    vfs.symlinkat(w.ctx, ROOT, b"b/../f", None, b"/a/l")
    vfs.linkat(w.ctx, ROOT, None, b"/a/f", None, b"/hard")
    assert sorted(os.listdir(rw)) == ["a", "hard"]
    assert sorted(os.listdir(rw / "a")) == ["b", "f", "fifo", "l"]
    assert stat.S_IMODE(os.stat(rw / "a/b").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(rw / "a/f").st_mode) == 0o640 & ~0o022
    assert stat.S_ISFIFO(os.stat(rw / "a/fifo").st_mode)
    assert os.readlink(rw / "a/l") == "b/../f"
    assert w.lookup(b"/a/l").inode is f.inode is w.lookup(b"/hard").inode
    assert w.lookup(b"/a/l", follow=False).inode.readlink() == b"b/../f"
    assert os.stat(rw / "hard").st_nlink == 2
    w.syscall()
    assert f.inode.nlink == 2 and f.inode.ino == os.stat(rw / "hard").st_ino
    # The host's device: the guest's fstat of its descriptor (the kernel's) must agree.
    assert (f.inode.dev, f.inode.ino) == f.inode.host_key == host_key(rw / "hard")

    vfs.renameat2(w.ctx, ROOT, None, b"/a/fifo", None, b"/a/b/fifo")
    vfs.unlinkat(w.ctx, ROOT, None, b"/a/l")
    fails(errno.ENOTEMPTY, vfs.rmdirat, w.ctx, ROOT, None, b"/a/b")  # the host says so
    vfs.unlinkat(w.ctx, ROOT, None, b"/a/b/fifo")
    vfs.rmdirat(w.ctx, ROOT, None, b"/a/b")
    assert sorted(os.listdir(rw / "a")) == ["f"]
    assert sorted(name for name, _ in w.lookup(b"/a").inode.readdir()) == [b"f"]
    fails(errno.ENOENT, w.lookup, b"/a/b")
    fails(errno.EEXIST, w.mkdir, b"/a/f")


def test_rename_flags_reach_the_host(w, host):
    rw = host[0]
    a, b = w.file(b"/a"), w.mkdir(b"/b")
    fails(errno.EEXIST, vfs.renameat2, w.ctx, ROOT, None, b"/a", None, b"/b",
          abi.RENAME_NOREPLACE)
    vfs.renameat2(w.ctx, ROOT, None, b"/a", None, b"/b", abi.RENAME_EXCHANGE)
    assert os.path.isdir(rw / "a") and os.path.isfile(rw / "b")
    assert w.lookup(b"/a").inode is b.inode and w.lookup(b"/b").inode is a.inode
    assert b.inode._path() == b"a" and a.inode._path() == b"b"
    vfs.renameat2(w.ctx, ROOT, None, b"/b", None, b"/c", abi.RENAME_NOREPLACE)
    assert sorted(os.listdir(rw)) == ["a", "c"]
    fails(errno.ENOENT, w.lookup, b"/b")


@needs_root
def test_new_files_get_the_callers_ids_and_exactly_the_mode_asked(w, host):
    rw = host[0]
    w.mkdir(b"/shared", 0o777)
    vfs.lookup(w.ctx, ROOT, None, b"/shared").inode.setattr(mode=0o2777, gid=50)
    f = w.file(b"/shared/f", 0o2775, creds=ALICE)  # ALICE is in group 50: setgid stays
    d = w.mkdir(b"/shared/d", 0o755, creds=ALICE)
    link = vfs.symlinkat(w.ctx, ALICE, b"f", None, b"/shared/l")
    fifo = vfs.mknodat(w.ctx, NOBODY, None, b"/shared/p", Kind.FIFO, 0o4644)
    for name, inode, mode, uid, gid in [("f", f.inode, 0o2755, 1000, 50),
                                        ("d", d.inode, 0o2755, 1000, 50),
                                        ("p", fifo.inode, 0o4644, 65534, 50)]:
        st = os.lstat(rw / "shared" / name)
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (mode, uid, gid), name
        assert (inode.mode, inode.uid, inode.gid) == (mode, uid, gid), name
    st = os.lstat(rw / "shared/l")
    assert (st.st_uid, st.st_gid) == (1000, 50) == (link.inode.uid, link.inode.gid)


# ---- attributes ----

def test_attributes_are_fresh_after_a_write_through_a_host_descriptor(w, host):
    f = w.file(b"/f")
    before = f.inode.mtime_ns
    fd = f.inode.open_host(abi.O_WRONLY)
    try:
        time.sleep(0.01)
        os.write(fd, b"written behind the Sentry's back")
    finally:
        os.close(fd)
    assert f.inode.size == 0  # the same syscall: the stat it took is still good
    w.syscall()
    assert f.inode.size == len(b"written behind the Sentry's back")
    assert f.inode.mtime_ns > before
    assert f.inode.mtime_ns == os.stat(host[0] / "f").st_mtime_ns


def test_setattr_reaches_the_host(w, host):
    rw = host[0]
    f = w.file(b"/f", 0o644)
    f.inode.setattr(mode=0o4711)
    assert stat.S_IMODE(os.stat(rw / "f").st_mode) == 0o4711 == f.inode.mode
    f.inode.setattr(atime=(1000, 5), mtime=(2000, abi.UTIME_OMIT))
    st = os.stat(rw / "f")
    assert st.st_atime_ns == 1000 * 10**9 + 5 and st.st_mtime_ns != 2000 * 10**9
    f.inode.setattr(mtime=(0, abi.UTIME_NOW))
    assert abs(os.stat(rw / "f").st_mtime_ns - time.time_ns()) < 10**9
    assert f.inode.atime_ns == 1000 * 10**9 + 5
    fails(errno.EINVAL, f.inode.setattr, atime=(0, 10**9))
    link = vfs.symlinkat(w.ctx, ROOT, b"f", None, b"/l")
    fails(errno.EOPNOTSUPP, link.inode.setattr, mode=0o600)
    if IS_ROOT:
        f.inode.setattr(uid=1000, gid=50)  # chown takes S_ISUID away
        st = os.stat(rw / "f")
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 50, 0o711)
        link.inode.setattr(uid=1000)  # the link itself, not its target
        assert os.lstat(rw / "l").st_uid == 1000


def test_open_trunc_strips_setuid_through_setattr_and_stamps(w, host):
    rw = host[0]
    f = w.file(b"/f")
    f.inode.setattr(mode=0o4666)
    (rw / "f").write_bytes(b"data")
    w.syscall()
    stamp = f.inode.mtime_ns
    time.sleep(0.01)
    vfs.openat(w.ctx, NOBODY, None, b"/f", abi.O_WRONLY | abi.O_TRUNC)
    st = os.stat(rw / "f")
    assert (st.st_size, stat.S_IMODE(st.st_mode)) == (0, 0o666)
    assert st.st_mtime_ns > stamp
    assert (f.inode.size, f.inode.mode) == (0, 0o666)


def test_data_access_and_truncate(w, host):
    f = w.file(b"/f")
    assert f.inode.write(2, b"xy") == 2
    assert (host[0] / "f").read_bytes() == b"\0\0xy"
    assert f.inode.read(1, 10) == b"\0xy"
    f.inode.truncate(1)
    assert (host[0] / "f").read_bytes() == b"\0" and f.inode.size == 1
    d = w.mkdir(b"/d")
    fails(errno.EISDIR, d.inode.read, 0, 1)
    fails(errno.EISDIR, d.inode.truncate, 0)


def test_xattrs_and_statfs(w, host):
    rw = host[0]
    f = w.file(b"/f")
    try:
        f.inode.setxattr(b"user.k", b"v", 0)
    except OSError as e:
        if e.errno == errno.EOPNOTSUPP:
            pytest.skip("the host file system has no user xattrs")
        raise
    assert os.getxattr(rw / "f", "user.k") == b"v"
    assert f.inode.getxattr(b"user.k") == b"v"
    assert f.inode.listxattr() == [b"user.k"]
    fails(errno.EEXIST, f.inode.setxattr, b"user.k", b"w", os.XATTR_CREATE)
    fails(errno.EPERM, f.inode.setxattr, b"trusted.k", b"v", 0)
    f.inode.removexattr(b"user.k")
    fails(errno.ENODATA, f.inode.getxattr, b"user.k")
    s, host_s = f.inode.statfs(), os.statvfs(rw)
    assert (s.f_bsize, s.f_namelen, s.f_blocks) == (host_s.f_bsize, host_s.f_namemax,
                                                    host_s.f_blocks)


# ---- host descriptors ----

def test_open_host_gives_the_description_asked_for(w, host):
    rw = host[0]
    f = w.file(b"/f")
    (rw / "f").write_bytes(b"0123")
    fd = f.inode.open_host(abi.O_WRONLY | abi.O_APPEND | abi.O_NONBLOCK | abi.O_CLOEXEC
                           | abi.O_CREAT | abi.O_TRUNC | abi.O_EXCL)
    try:
        status = fcntl.fcntl(fd, fcntl.F_GETFL)
        assert status & abi.O_ACCMODE == abi.O_WRONLY
        assert status & abi.O_APPEND and status & abi.O_NONBLOCK
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, b"45")  # O_APPEND: at the end whatever the offset
        assert host_key(rw / "f") == (os.fstat(fd).st_dev, os.fstat(fd).st_ino)
    finally:
        os.close(fd)
    assert (rw / "f").read_bytes() == b"012345"  # O_TRUNC was the VFS's, not repeated

    fd = f.inode.open_host(abi.O_RDONLY)
    try:
        fails(errno.EBADF, os.write, fd, b"x")
        assert os.read(fd, 3) == b"012"
        assert not fcntl.fcntl(fd, fcntl.F_GETFL) & abi.O_NONBLOCK
    finally:
        os.close(fd)
    fd = f.inode.open_host(abi.O_PATH | abi.O_RDWR)
    try:
        assert fcntl.fcntl(fd, fcntl.F_GETFL) & abi.O_PATH
        fails(errno.EBADF, os.read, fd, 1)
    finally:
        os.close(fd)

    d = w.mkdir(b"/d")
    w.file(b"/d/x")
    fd = d.inode.open_host(abi.O_RDONLY | abi.O_DIRECTORY)
    try:
        assert os.listdir(fd) == ["x"]  # getdents runs on it natively
    finally:
        os.close(fd)
    fails(errno.ENOTDIR, f.inode.open_host, abi.O_RDONLY | abi.O_DIRECTORY)
    fails(errno.EISDIR, d.inode.open_host, abi.O_WRONLY)
    link = vfs.symlinkat(w.ctx, ROOT, b"f", None, b"/l")
    fails(errno.ELOOP, link.inode.open_host, abi.O_RDONLY)
    fd = link.inode.open_host(abi.O_PATH)
    try:
        assert stat.S_ISLNK(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
    sock = vfs.mknodat(w.ctx, ROOT, None, b"/s", Kind.SOCK, 0o644)
    fails(errno.ENXIO, sock.inode.open_host, abi.O_RDONLY)
    fifo = vfs.mknodat(w.ctx, ROOT, None, b"/p", Kind.FIFO, 0o644)
    fails(errno.ENXIO, fifo.inode.open_host, abi.O_WRONLY | abi.O_NONBLOCK)  # no reader


@needs_root
def test_device_nodes_open_only_on_mounts_without_nodev(client, host):
    rw = host[0]
    os.mknod(rw / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    try:
        os.close(os.open(rw / "null", os.O_WRONLY))
    except PermissionError:
        pytest.skip("the host mount is nodev")
    w = World(client)
    null = w.lookup(b"/null").inode
    assert (null.kind, null.rdev) == (Kind.CHR, os.makedev(1, 3))
    w.table.root.nodev = True
    fails(errno.EACCES, vfs.openat, w.ctx, ROOT, None, b"/null", abi.O_WRONLY)
    w.table.root.nodev = False
    vfs.openat(w.ctx, ROOT, None, b"/null", abi.O_WRONLY)
    fd = null.open_host(abi.O_WRONLY)
    try:
        assert os.write(fd, b"gone") == 4
    finally:
        os.close(fd)
    fails(errno.EINVAL, vfs.mknodat, w.ctx, ROOT, None, b"/zero", Kind.CHR, 0o666)


# ---- the cache: paths, identities, what the host may change ----

def test_a_renamed_directory_takes_its_cached_descendants_along(w, host):
    rw = host[0]
    w.mkdir(b"/a")
    w.mkdir(b"/a/b")
    c = w.mkdir(b"/a/b/c")
    f = w.file(b"/a/b/c/f")
    vfs.renameat2(w.ctx, ROOT, None, b"/a", None, b"/x")
    vfs.renameat2(w.ctx, ROOT, None, b"/x/b", None, b"/y")
    assert f.inode._path() == b"y/c/f"
    assert vfs.getcwd(FSContext(w.ctx.root, c)) == b"/y/c"
    # Operations on the descendants land where they now are.
    f.inode.setattr(mode=0o600)
    assert stat.S_IMODE(os.stat(rw / "y/c/f").st_mode) == 0o600
    fd = f.inode.open_host(abi.O_WRONLY)
    os.write(fd, b"moved")
    os.close(fd)
    assert (rw / "y/c/f").read_bytes() == b"moved"
    vfs.openat(w.ctx, ROOT, c, b"g", abi.O_CREAT | abi.O_WRONLY, 0o644)
    vfs.mkdirat(w.ctx, ROOT, c, b"sub", 0o755)
    assert sorted(os.listdir(rw / "y/c")) == ["f", "g", "sub"]
    assert os.listdir(rw / "x") == []


def test_hard_links_share_one_inode_found_by_host_identity(w, host):
    rw = host[0]
    f = w.file(b"/f")
    w.mkdir(b"/d")
    vfs.linkat(w.ctx, ROOT, None, b"/f", None, b"/d/g")
    assert w.fs.by_host_key(*host_key(rw / "f")) is f.inode
    assert w.lookup(b"/d/g").inode is f.inode
    # Its first name goes: the inode is reached by the other one.
    vfs.unlinkat(w.ctx, ROOT, None, b"/f")
    assert not (rw / "f").exists()
    assert f.inode._path() == b"d/g"
    f.inode.setattr(mode=0o600)
    assert stat.S_IMODE(os.stat(rw / "d/g").st_mode) == 0o600
    fd = f.inode.open_host(abi.O_RDWR)
    os.close(fd)
    vfs.renameat2(w.ctx, ROOT, None, b"/d", None, b"/e")
    assert w.fs.by_host_key(*host_key(rw / "e/g")) is f.inode
    # A name the Sentry had not seen leads to the same inode too.
    os.link(rw / "e/g", rw / "h")
    assert w.lookup(b"/h").inode is f.inode
    vfs.unlinkat(w.ctx, ROOT, None, b"/e/g")
    vfs.unlinkat(w.ctx, ROOT, None, b"/h")
    w.syscall()
    assert f.inode.nlink == 0 and not f.inode.dead  # still statable, as an open file is
    fails(errno.ENOENT, f.inode.setattr, mode=0o644)  # no name left to reach it by
    fails(errno.ENOENT, vfs.linkat, w.ctx, ROOT, None, b"/h", None, b"/back")


def test_rename_over_hard_links_of_one_file_does_nothing(w, host):
    f = w.file(b"/f")
    vfs.linkat(w.ctx, ROOT, None, b"/f", None, b"/g")
    vfs.renameat2(w.ctx, ROOT, None, b"/f", None, b"/g")
    assert sorted(os.listdir(host[0])) == ["f", "g"]
    assert w.lookup(b"/f").inode is w.lookup(b"/g").inode is f.inode


def test_an_exclusive_mount_trusts_its_cache(w, host):
    rw = host[0]
    fails(errno.ENOENT, w.lookup, b"/later")
    (rw / "later").write_bytes(b"")  # what no one may do to an exclusive mount
    fails(errno.ENOENT, w.lookup, b"/later")
    w.fs.drop_caches()
    assert w.lookup(b"/later").inode.kind is Kind.REG


def test_a_shared_mount_follows_the_host(client, host):
    rw = host[0]
    w = World(client, exclusive=False)
    fails(errno.ENOENT, w.lookup, b"/f")
    (rw / "f").write_bytes(b"one")
    f = w.lookup(b"/f")
    assert f.inode.size == 3
    (rw / "f").write_bytes(b"three")  # the same file, changed
    w.syscall()
    assert w.lookup(b"/f").inode is f.inode and f.inode.size == 5
    (rw / "new").write_bytes(b"another file")
    os.rename(rw / "new", rw / "f")  # replaced
    g = w.lookup(b"/f")
    assert g.inode is not f.inode and f.dead and g.inode.size == len(b"another file")
    assert w.fs.by_host_key(*host_key(rw / "f")) is g.inode
    # A directory the host moved is found at its new place, with its cached children.
    (rw / "d").mkdir()
    (rw / "d/x").write_bytes(b"")
    x = w.lookup(b"/d/x")
    os.rename(rw / "d", rw / "e")
    fails(errno.ENOENT, w.lookup, b"/d/x")
    assert w.lookup(b"/e/x").inode is x.inode and x.inode._path() == b"e/x"
    x.inode.setattr(mode=0o600)
    assert stat.S_IMODE(os.stat(rw / "e/x").st_mode) == 0o600
    os.unlink(rw / "e/x")
    fails(errno.ENOENT, w.lookup, b"/e/x")
    # An open of a name that now leads elsewhere is refused, not redirected.
    (rw / "y").write_bytes(b"")
    y = w.lookup(b"/y")
    os.rename(rw / "f", rw / "y")
    fails(errno.ESTALE, y.inode.open_host, abi.O_RDONLY)


def test_read_only_mounts_refuse_writes_in_the_vfs_and_in_the_gofer(client, host):
    ro = host[1]
    sealed = World(client, 1, readonly=True)
    fails(errno.EROFS, sealed.mkdir, b"/x")
    fails(errno.EROFS, vfs.openat, sealed.ctx, ROOT, None, b"/file", abi.O_WRONLY)
    # Even if the VFS let one through, the gofer refuses it.
    w = World(client, 1)
    fails(errno.EROFS, w.mkdir, b"/x")
    f = w.lookup(b"/file")
    fails(errno.EROFS, f.inode.open_host, abi.O_WRONLY)
    fails(errno.EROFS, f.inode.setattr, mode=0o777)
    fails(errno.EROFS, f.inode.truncate, 0)
    fails(errno.EROFS, vfs.unlinkat, w.ctx, ROOT, None, b"/file")
    fails(errno.EROFS, vfs.renameat2, w.ctx, ROOT, None, b"/file", None, b"/dir/file")
    fd = f.inode.open_host(abi.O_RDONLY)
    try:
        assert os.read(fd, 100) == b"read only"
    finally:
        os.close(fd)
    assert sorted(os.listdir(ro)) == ["dir", "file"]


def test_round_trips(client, host):
    """What costs a gofer request: a cached walk none, a shared mount one per name."""
    rw = host[0]
    (rw / "a/b").mkdir(parents=True)
    (rw / "a/b/f").write_bytes(b"")
    w = World(client)
    f = w.lookup(b"/a/b/f")
    before = client.calls
    for _ in range(3):
        w.syscall()
        assert w.lookup(b"/a/b/f") is f
        fails(errno.ENOENT, w.lookup, b"/a/b/missing")
    assert client.calls == before + 1  # the first miss; then remembered
    before = client.calls
    os.close(f.inode.open_host(abi.O_RDONLY))
    w.file(b"/a/new")
    # open; then the name's lookup, the creation and the new file's O_PATH descriptor
    assert client.calls - before == 1 + 1 + 2
    shared = World(client, exclusive=False)
    shared.lookup(b"/a/b/f")
    before = client.calls
    shared.lookup(b"/a/b/f")
    assert client.calls - before == 3


def test_directfs_looks_up_and_opens_without_the_gofer(tmp_path):
    """directfs: a lookup opens beneath its directory's descriptor, and a descriptor for the
    guest opens beneath its mount's root in the view (here mount 1, the same directory),
    which the gofer donates once: no request per call. A write-open of a file of a shared
    mount, whose set-id bits the gofer drops, and anything the direct open refuses, are
    still the gofer's."""
    (tmp_path / "a/b").mkdir(parents=True)
    (tmp_path / "a/b/f").write_bytes(b"data")
    with running_gofer([(tmp_path, False), (tmp_path, False)]) as client:
        w = World(client, exclusive=False, direct=True)  # a shared mount: no cached names
        fs = FileSystem(w.table, -1, w.generation, view=(client, 1), direct=True)
        f = w.lookup(b"/a/b/f")
        fs.open(f, abi.O_RDONLY)  # the first asks the gofer for the view's root
        before = client.calls
        for _ in range(3):
            w.syscall()
            f = w.lookup(b"/a/b/f")
            fails(errno.ENOENT, w.lookup, b"/a/b/missing")
            fd = fs.open(f, abi.O_RDONLY)
            assert os.read(fd, 10) == b"data" and os.fstat(fd).st_ino == f.inode.ino
            os.close(fd)
            os.close(fs.open(w.lookup(b"/a"), abi.O_RDONLY | abi.O_DIRECTORY))
        assert client.calls == before
        # A name made is the gofer's change; its descriptor is then opened beneath the
        # directory's, not asked for: one request each.
        made = [lambda: w.file(b"/a/new"), lambda: w.mkdir(b"/a/newdir"),
                lambda: vfs.symlinkat(w.ctx, ROOT, b"new", None, b"/a/newlink")]
        for make in made:
            before = client.calls
            w.syscall()
            make()
            assert client.calls == before + 1
        assert os.readlink(tmp_path / "a/newlink") == "new"
        assert (tmp_path / "a/new").is_file() and (tmp_path / "a/newdir").is_dir()
        before = client.calls
        w.fs.host_shared = True
        os.close(fs.open(f, abi.O_WRONLY))
        assert client.calls == before + 1
        # The brokered mode asks the gofer for each name of a shared mount, and each open.
        brokered = World(client, exclusive=False)
        fs = FileSystem(brokered.table, -1, brokered.generation, view=(client, 1))
        before = client.calls
        os.close(fs.open(brokered.lookup(b"/a/b/f"), abi.O_RDONLY))
        assert client.calls - before == 3 + 1


def test_the_cache_bounds_the_descriptors_held(client, host):
    rw = host[0]
    for i in range(100):
        (rw / f"f{i}").write_bytes(b"")
    w = World(client)
    w.fs.cache_size = 10
    w.table.recently_used = collections.deque(maxlen=10)  # the dentry LRU holds inodes too
    fds = len(os.listdir("/proc/self/fd"))
    for i in range(100):
        w.lookup(b"/f%d" % i)
    assert len(os.listdir("/proc/self/fd")) <= fds + 20
    kept = w.lookup(b"/f0")  # and what a dentry holds stays
    for i in range(1, 100):
        w.lookup(b"/f%d" % i)
    assert w.lookup(b"/f0") is kept


# ---- overlayfs, as the rootfs mount is served ----

@pytest.fixture
def overlay(tmp_path):
    """A kernel overlay (lower: a host directory, upper: a tmpfs) in a mount namespace of
    its own, reached through that namespace's /proc/PID/root."""
    if not IS_ROOT:
        pytest.skip("mounts an overlay")
    lower, top = tmp_path / "lower", tmp_path / "top"
    (lower / "d").mkdir(parents=True)
    (lower / "d/f").write_bytes(b"lower")
    top.mkdir()
    script = (f"mount -t tmpfs tmpfs {top} && mkdir {top}/u {top}/w {top}/m && "
              f"mount -t overlay overlay -o lowerdir={lower},upperdir={top}/u,workdir={top}/w "
              f"{top}/m && echo ready && exec cat")
    holder = subprocess.Popen(["unshare", "-m", "sh", "-c", script], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
    try:
        if holder.stdout.readline() != b"ready\n":
            pytest.skip("no overlayfs here")
        yield lower, f"/proc/{holder.pid}/root{top}/m", f"/proc/{holder.pid}/root{top}/u"
    finally:
        holder.stdin.close()
        holder.wait()


def test_an_overlay_copies_up_under_the_same_inode(overlay):
    lower, merged, upper = overlay
    with running_gofer([(merged, False)]) as client:
        w = World(client)
        f = w.lookup(b"/d/f")
        fd = f.inode.open_host(abi.O_WRONLY | abi.O_APPEND)
        try:
            os.write(fd, b"+upper")
            st = os.fstat(fd)
        finally:
            os.close(fd)
        assert w.fs.by_host_key(st.st_dev, st.st_ino) is f.inode
        assert (lower / "d/f").read_bytes() == b"lower"
        with open(f"{upper}/d/f", "rb") as copy:
            assert copy.read() == b"lower+upper"
        vfs.unlinkat(w.ctx, ROOT, None, b"/d/f")  # a whiteout, the kernel's business
        fails(errno.ENOENT, w.lookup, b"/d/f")
        assert (lower / "d/f").exists()


# ---- what both file systems offer the syscall layer ----

@pytest.fixture(params=["tmpfs", "gofer"])
def any_root(request, host):
    if request.param == "tmpfs":
        yield Tmpfs(mode=0o755).root
        return
    with running_gofer([(host[0], False)]) as c:
        yield GoferFS(c, 0, exclusive=True).root


def test_setattr_means_the_same_on_both(any_root):
    f = any_root.create(b"f", Kind.REG, 0o6755, 0, 0)
    ctime = f.ctime_ns
    time.sleep(0.01)
    f.setattr(mode=0o6775)
    assert f.mode == 0o6775 and f.ctime_ns > ctime
    if isinstance(any_root, Tmpfs().root.__class__) or IS_ROOT:
        f.setattr(gid=50)  # chown: S_ISUID goes, and S_ISGID with group exec
        assert (f.gid, f.mode) == (50, 0o775)
    f.setattr(atime=(7, 8), mtime=(9, 10))
    assert (f.atime_ns, f.mtime_ns) == (7_000_000_008, 9_000_000_010)
    f.setattr(atime=(0, abi.UTIME_OMIT), mtime=(0, abi.UTIME_NOW))
    assert f.atime_ns == 7_000_000_008 and f.mtime_ns > 9_000_000_010
    link = any_root.symlink(b"l", b"f", 0, 0)
    fails(errno.EOPNOTSUPP, link.setattr, mode=0o700)
    fails(errno.EINVAL, f.setattr, mtime=(0, -1))
    s = any_root.statfs()
    assert s.f_namelen == 255 and s.f_bsize > 0


def test_tmpfs_has_no_host_descriptors_or_xattrs():
    root = Tmpfs().root
    fails(errno.EOPNOTSUPP, root.open_host, abi.O_RDONLY)
    fails(errno.EOPNOTSUPP, root.getxattr, b"user.x")
    fails(errno.EOPNOTSUPP, root.setxattr, b"user.x", b"v", 0)
    fails(errno.EOPNOTSUPP, root.removexattr, b"user.x")
    assert root.listxattr() == []
    assert root.statfs().f_type == 0x01021994


def test_the_names_of_a_hard_linked_file_hold_few_directories(client, host):
    """A file with a name in each of 300 directories: looking every name up keeps a bounded
    number of them (each holds its directory's descriptor), and every name still works."""
    rw = host[0]
    (rw / "f").write_bytes(b"x")
    for i in range(300):
        (rw / f"d{i}").mkdir()
        os.link(rw / "f", rw / f"d{i}/f")
    w = World(client)
    w.fs.cache_size = 10
    w.table.recently_used = collections.deque(maxlen=10)
    fds = len(os.listdir("/proc/self/fd"))
    held = w.lookup(b"/f")
    for i in range(300):
        assert w.lookup(b"/d%d/f" % i).inode is held.inode
    assert len(os.listdir("/proc/self/fd")) <= fds + 40
    w.syscall()
    vfs.unlinkat(w.ctx, ROOT, None, b"/f")
    assert not (rw / "f").exists()
    for i in range(300):
        assert w.lookup(b"/d%d/f" % i).inode.nlink == 300  # 301 names, less one
