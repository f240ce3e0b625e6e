"""The Sentry's VFS on its own: permissions, path resolution, mounts and tmpfs, case by case,
and a property test that no walk leaves the root it was given.

test_vfs_native.py compares the same code with the host kernel; these cases pin down each
rule by name, including the ones the oracle cannot reach (capabilities one at a time,
read-only and nosymfollow mounts, sysctls the host has off).
"""

import errno
import stat

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgevisor import abi
from edgevisor.sentry import vfs
from edgevisor.sentry.fsimpl.tmpfs import Tmpfs
from edgevisor.sentry.vfs import Credentials, FSContext, Kind, MountTable

ROOT = Credentials.root()
NOBODY = Credentials(65534, 65534)
ALICE = Credentials(1000, 1000, frozenset({50}))


def fails(code, fn, *args, **kw):
    with pytest.raises(OSError) as info:
        fn(*args, **kw)
    assert info.value.errno == code, (errno.errorcode.get(info.value.errno), errno.errorcode[code])


class World:
    """A root tmpfs with a task's context on it, and short ways to build a tree."""

    def __init__(self, umask=0o022, clock=None):
        kw = {} if clock is None else {"clock": clock}
        self.table = MountTable(Tmpfs(mode=0o755, **kw).root)
        self.ctx = FSContext(self.table.root.root, umask=umask)

    def mkdir(self, path, mode=0o755, creds=ROOT):
        d = vfs.mkdirat(self.ctx, creds, None, path, 0o777)
        d.inode.mode = mode  # exactly this mode, whatever the umask
        return d

    def file(self, path, mode=0o644, data=b"", creds=ROOT):
        d = vfs.openat(self.ctx, creds, None, path, abi.O_CREAT | abi.O_WRONLY, 0o666)
        d.inode.mode = mode
        d.inode.write(0, data)
        return d

    def symlink(self, target, path, creds=ROOT):
        return vfs.symlinkat(self.ctx, creds, target, None, path)

    def resolve(self, path, follow=True, creds=ROOT, start=None, flags=0, must_dir=False):
        return vfs.resolve(self.ctx, creds, start, path, follow_last=follow, must_dir=must_dir,
                           resolve_flags=flags)

    def lookup(self, path, follow=True, creds=ROOT, start=None, flags=0):
        return vfs.lookup(self.ctx, creds, start, path, follow=follow, resolve_flags=flags)

    def mount(self, path, **flags):
        return self.table.mount(Tmpfs(mode=0o755).root, self.lookup(path), **flags)

    def names(self, path):
        return sorted(name for name, _ in self.lookup(path).inode.readdir())


@pytest.fixture
def w():
    return World()


def inode_of(fs: Tmpfs, mode=0o644, uid=0, gid=0, kind=Kind.REG):
    """A loose inode for permission checks."""
    return fs.root.create(f"f{fs.next_ino()}".encode(), kind, mode, uid, gid)


# ---- permission(): Linux's generic_permission ----

@pytest.fixture
def fs():
    return Tmpfs()


def test_the_owner_class_applies_to_the_owner_even_when_others_get_more(fs):
    f = inode_of(fs, 0o077, uid=1000, gid=1000)
    fails(errno.EACCES, vfs.permission, ALICE, f, vfs.MAY_READ)
    vfs.permission(Credentials(2000, 1000), f, vfs.MAY_READ)  # the group may


def test_group_by_primary_or_supplementary_gid(fs):
    f = inode_of(fs, 0o640, uid=0, gid=50)
    vfs.permission(ALICE, f, vfs.MAY_READ)  # 50 is a supplementary group of ALICE
    vfs.permission(Credentials(2000, 50), f, vfs.MAY_READ)
    fails(errno.EACCES, vfs.permission, NOBODY, f, vfs.MAY_READ)
    fails(errno.EACCES, vfs.permission, ALICE, f, vfs.MAY_WRITE)


def test_other_bits(fs):
    f = inode_of(fs, 0o604)
    vfs.permission(NOBODY, f, vfs.MAY_READ)
    fails(errno.EACCES, vfs.permission, NOBODY, f, vfs.MAY_READ | vfs.MAY_WRITE)


def test_uid_0_without_capabilities_is_nobody_special(fs):
    f = inode_of(fs, 0o000, uid=1000)
    fails(errno.EACCES, vfs.permission, Credentials(0, 0), f, vfs.MAY_READ)


def test_dac_override_reads_and_writes_anything_but_executes_only_with_an_x_bit(fs):
    over = Credentials(1000, 1000, cap_dac_override=True)
    f = inode_of(fs, 0o000, uid=0)
    vfs.permission(over, f, vfs.MAY_READ | vfs.MAY_WRITE)
    fails(errno.EACCES, vfs.permission, over, f, vfs.MAY_EXEC)
    fails(errno.EACCES, vfs.permission, ROOT, f, vfs.MAY_EXEC)
    f.mode = 0o001  # anyone's x bit will do
    vfs.permission(ROOT, f, vfs.MAY_EXEC)
    d = inode_of(fs, 0o000, kind=Kind.DIR)
    vfs.permission(over, d, vfs.MAY_READ | vfs.MAY_WRITE | vfs.MAY_EXEC)


def test_dac_read_search_reads_files_and_searches_directories_but_never_writes(fs):
    rs = Credentials(1000, 1000, cap_dac_read_search=True)
    f = inode_of(fs, 0o000)
    vfs.permission(rs, f, vfs.MAY_READ)
    fails(errno.EACCES, vfs.permission, rs, f, vfs.MAY_WRITE)
    fails(errno.EACCES, vfs.permission, rs, f, vfs.MAY_EXEC)
    d = inode_of(fs, 0o000, kind=Kind.DIR)
    vfs.permission(rs, d, vfs.MAY_READ | vfs.MAY_EXEC)
    fails(errno.EACCES, vfs.permission, rs, d, vfs.MAY_WRITE | vfs.MAY_EXEC)


def test_writers_without_fsetid_lose_setuid_and_setgid(fs):
    f = inode_of(fs, 0o6755, gid=50)
    vfs.remove_privs(ROOT, f)  # CAP_FSETID keeps them
    assert f.mode == 0o6755
    vfs.remove_privs(ALICE, f)
    assert f.mode == 0o755
    f.mode = 0o2644  # setgid without group exec: a locking mark, kept for group members
    vfs.remove_privs(ALICE, f)
    assert f.mode == 0o2644
    vfs.remove_privs(NOBODY, f)
    assert f.mode == 0o644


# ---- resolve(): the walk ----

def test_absolute_paths_start_at_the_root_relative_ones_at_the_start(w):
    a = w.mkdir(b"/a")
    w.mkdir(b"/a/b")
    w.mkdir(b"/b")
    assert w.resolve(b"b", start=a).dentry.parent is a
    assert w.resolve(b"/b", start=a).dentry.parent is w.ctx.root
    assert w.resolve(b"b").dentry.parent is w.ctx.root  # no start: the cwd


def test_dotdot_stops_at_the_tasks_root(w):
    jail = w.mkdir(b"/jail")
    w.mkdir(b"/jail/x")
    w.ctx.root = w.ctx.cwd = jail
    assert w.resolve(b"/../../..").dentry is jail
    assert w.resolve(b"../x").dentry.name == b"x"
    res = w.resolve(b"/..")
    assert (res.parent, res.name, res.dentry) == (jail, b"..", jail)


def test_a_cwd_outside_the_root_walks_up_freely_as_in_linux(w):
    jail = w.mkdir(b"/jail")
    out = w.mkdir(b"/out")
    w.ctx.root, w.ctx.cwd = jail, out
    assert w.resolve(b"..").dentry is w.table.root.root
    assert vfs.getcwd(w.ctx) == b"(unreachable)/out"


def test_empty_and_overlong_paths(w):
    fails(errno.ENOENT, w.resolve, b"")
    fails(errno.ENAMETOOLONG, w.resolve, b"/" * abi.PATH_MAX)
    assert w.resolve(b"/" * (abi.PATH_MAX - 1)).dentry is w.ctx.root
    fails(errno.ENAMETOOLONG, w.resolve, b"x" * 256)
    assert w.resolve(b"x" * 255).dentry is None
    # The long name is only a problem when it is looked up.
    fails(errno.ENOENT, w.resolve, b"missing/" + b"x" * 256)


def test_walking_through_a_non_directory(w):
    w.file(b"/f")
    fails(errno.ENOTDIR, w.resolve, b"/f/x")
    fails(errno.ENOTDIR, w.resolve, b"/f/.")
    fails(errno.ENOTDIR, w.resolve, b"/f/")
    fails(errno.ENOTDIR, w.resolve, b"/f", must_dir=True)
    fails(errno.ENOENT, w.resolve, b"/missing/x")


def test_relative_from_a_start_that_is_not_a_directory(w):
    f = w.file(b"/f")
    fails(errno.ENOTDIR, w.resolve, b"x", start=f)
    assert w.resolve(b"/", start=f).dentry is w.ctx.root
    fails(errno.ENOTDIR, w.resolve, b"/x", start=f, flags=abi.RESOLVE_IN_ROOT)


def test_a_missing_last_component_gives_its_would_be_parent(w):
    a = w.mkdir(b"/a")
    res = w.resolve(b"/a/new")
    assert (res.parent, res.name, res.dentry, res.trailing_slash) == (a, b"new", None, False)
    assert w.resolve(b"/a/new/").trailing_slash


def test_symlinks_resolve_from_their_directory_or_the_root(w):
    w.mkdir(b"/a")
    w.mkdir(b"/a/b")
    target = w.mkdir(b"/b")
    w.symlink(b"b", b"/a/rel")
    w.symlink(b"/b", b"/a/abs")
    assert w.resolve(b"/a/rel").dentry.parent.name == b"a"
    assert w.resolve(b"/a/abs").dentry is target
    assert w.resolve(b"/a/abs/.").dentry is target
    link = w.resolve(b"/a/abs", follow=False).dentry
    assert link.inode.is_symlink


def test_symlinks_are_absolute_to_a_chroot(w):
    jail = w.mkdir(b"/jail")
    inner = w.mkdir(b"/jail/etc")
    w.mkdir(b"/etc")
    w.symlink(b"/etc", b"/jail/l")
    w.symlink(b"../../../etc", b"/jail/up")
    w.ctx.root = jail
    assert w.resolve(b"/l").dentry is inner
    assert w.resolve(b"/up").dentry is inner


def test_a_trailing_slash_follows_a_symlink_and_wants_a_directory(w):
    d = w.mkdir(b"/d")
    w.file(b"/f")
    w.symlink(b"d", b"/ld")
    w.symlink(b"f", b"/lf")
    w.symlink(b"nowhere", b"/dangling")
    assert w.resolve(b"/ld/", follow=False).dentry is d
    fails(errno.ENOTDIR, w.resolve, b"/lf/", follow=False)
    res = w.resolve(b"/dangling/", follow=False)
    assert res.dentry is None and res.name == b"nowhere"


def test_a_dangling_symlink_leads_to_where_its_target_would_be(w):
    d = w.mkdir(b"/d")
    w.symlink(b"/d/new", b"/l")
    res = w.resolve(b"/l")
    assert (res.parent, res.name, res.dentry) == (d, b"new", None)
    w.symlink(b"/missing/new", b"/l2")
    fails(errno.ENOENT, w.resolve, b"/l2")


def test_forty_symlinks_are_followed_and_the_forty_first_is_eloop(w):
    w.mkdir(b"/d")
    w.symlink(b"d", b"/l0")
    for i in range(1, 41):
        w.symlink(b"l%d" % (i - 1), b"/l%d" % i)
    assert w.resolve(b"/l39").dentry.name == b"d"  # 40 links
    fails(errno.ELOOP, w.resolve, b"/l40")  # 41
    assert w.resolve(b"/l40", follow=False).dentry.inode.is_symlink
    w.symlink(b"self", b"/self")
    fails(errno.ELOOP, w.resolve, b"/self")
    fails(errno.ELOOP, w.resolve, b"/self/x")


def test_resolve_no_symlinks(w):
    w.mkdir(b"/d")
    w.symlink(b"d", b"/l")
    fails(errno.ELOOP, w.resolve, b"/l/x", flags=abi.RESOLVE_NO_SYMLINKS)
    fails(errno.ELOOP, w.resolve, b"/l", flags=abi.RESOLVE_NO_SYMLINKS)
    # A trailing symlink that is not followed is no symlink resolution.
    assert w.resolve(b"/l", follow=False, flags=abi.RESOLVE_NO_SYMLINKS).dentry


def test_resolve_flags_are_checked(w):
    fails(errno.EINVAL, w.resolve, b"/", flags=abi.RESOLVE_BENEATH | abi.RESOLVE_IN_ROOT)
    fails(errno.EINVAL, w.resolve, b"/", flags=0x40)


def test_resolve_beneath(w):
    start = w.mkdir(b"/s")
    w.mkdir(b"/s/a")
    w.mkdir(b"/other")
    w.symlink(b"/other", b"/s/abs")
    w.symlink(b"../other", b"/s/esc")
    w.symlink(b"a/..", b"/s/stay")
    b = abi.RESOLVE_BENEATH
    fails(errno.EXDEV, w.resolve, b"/s", start=start, flags=b)
    fails(errno.EXDEV, w.resolve, b"..", start=start, flags=b)
    fails(errno.EXDEV, w.resolve, b"a/../..", start=start, flags=b)
    fails(errno.EXDEV, w.resolve, b"abs", start=start, flags=b)
    fails(errno.EXDEV, w.resolve, b"esc", start=start, flags=b)
    assert w.resolve(b"a/..", start=start, flags=b).dentry is start
    assert w.resolve(b"stay", start=start, flags=b).dentry is start
    assert w.resolve(b"abs", follow=False, start=start, flags=b).dentry.inode.is_symlink


def test_resolve_in_root(w):
    start = w.mkdir(b"/s")
    inner = w.mkdir(b"/s/other")
    w.mkdir(b"/other")
    w.symlink(b"/other", b"/s/abs")
    w.symlink(b"../../../other", b"/s/esc")
    r = abi.RESOLVE_IN_ROOT
    assert w.resolve(b"/", start=start, flags=r).dentry is start
    assert w.resolve(b"/other", start=start, flags=r).dentry is inner
    assert w.resolve(b"../..", start=start, flags=r).dentry is start
    assert w.resolve(b"abs", start=start, flags=r).dentry is inner
    assert w.resolve(b"esc", start=start, flags=r).dentry is inner


def test_search_permission_on_every_directory_walked(w):
    w.mkdir(b"/locked", 0o700)
    w.mkdir(b"/locked/in", 0o777)
    w.mkdir(b"/open", 0o755)
    fails(errno.EACCES, w.resolve, b"/locked/in", creds=NOBODY)
    fails(errno.EACCES, w.resolve, b"/locked/missing", creds=NOBODY)  # before existence
    fails(errno.EACCES, w.resolve, b"/locked/.", creds=NOBODY)
    assert w.resolve(b"/locked", creds=NOBODY).dentry  # the last one needs no search
    assert w.resolve(b"/locked/", creds=NOBODY).dentry
    assert w.resolve(b"/locked/in", creds=ROOT).dentry
    rs = Credentials(65534, 65534, cap_dac_read_search=True)
    assert w.resolve(b"/locked/in", creds=rs).dentry
    w.lookup(b"/open").inode.mode = 0o754  # r but no x for others
    fails(errno.EACCES, w.resolve, b"/open/x", creds=NOBODY)


def test_search_permission_is_checked_in_the_cwd_for_dot(w):
    d = w.mkdir(b"/d", 0o600)
    w.ctx.cwd = d
    fails(errno.EACCES, w.resolve, b".", creds=NOBODY)


def test_symlink_bodies_are_walked_with_search_checks(w):
    w.mkdir(b"/locked", 0o700)
    w.mkdir(b"/locked/in", 0o777)
    w.symlink(b"/locked/in", b"/l")
    fails(errno.EACCES, w.resolve, b"/l", creds=NOBODY)


def test_a_removed_directory_has_no_names_and_gets_none(w):
    d = w.mkdir(b"/d")
    w.ctx.cwd = d
    vfs.rmdirat(w.ctx, ROOT, None, b"/d")
    fails(errno.ENOENT, w.resolve, b"x")
    fails(errno.ENOENT, vfs.mkdirat, w.ctx, ROOT, None, b"x", 0o755)
    fails(errno.ENOENT, vfs.openat, w.ctx, ROOT, None, b"x", abi.O_CREAT)
    fails(errno.ENOENT, vfs.getcwd, w.ctx)
    assert w.resolve(b"..").dentry is w.ctx.root  # '..' still leads back


def test_protected_symlinks_in_sticky_world_writable_directories(w):
    tmp = w.mkdir(b"/tmp", 0o1777)
    w.file(b"/secret", 0o600)
    w.symlink(b"/secret", b"/tmp/planted", creds=NOBODY)
    fails(errno.EACCES, w.resolve, b"/tmp/planted")
    assert w.resolve(b"/tmp/planted", creds=NOBODY).dentry  # its owner may
    assert w.resolve(b"/tmp/planted", follow=False).dentry.inode.is_symlink
    w.table.protected_symlinks = False
    assert w.resolve(b"/tmp/planted").dentry.name == b"secret"
    w.table.protected_symlinks = True
    tmp.inode.uid = NOBODY.uid  # the directory's owner's links are trusted
    assert w.resolve(b"/tmp/planted").dentry.name == b"secret"


def test_protected_symlinks_check_only_the_trailing_link(w):
    w.mkdir(b"/tmp", 0o1777)
    w.mkdir(b"/d")
    w.symlink(b"/d", b"/tmp/dir", creds=NOBODY)
    assert w.resolve(b"/tmp/dir/.").dentry.name == b"d"
    fails(errno.EACCES, w.resolve, b"/tmp/dir")


def test_nosymfollow_mounts(w):
    w.mkdir(b"/m")
    m = w.mount(b"/m", nosymfollow=True)
    w.symlink(b"/", b"/m/l")
    fails(errno.ELOOP, w.resolve, b"/m/l")
    assert w.resolve(b"/m/l", follow=False).dentry.mount is m


# ---- mounts ----

def test_a_walk_enters_the_topmost_mount_and_dotdot_leaves_it(w):
    a = w.mkdir(b"/a")
    w.mkdir(b"/a/under")
    first = w.mount(b"/a")
    w.mkdir(b"/a/first")
    second = w.mount(b"/a")  # stacked: lands on the first one's root
    assert second.mountpoint is first.root
    top = w.resolve(b"/a").dentry
    assert top is second.root
    assert w.names(b"/a") == []
    assert w.resolve(b"/a/..").dentry is w.ctx.root
    w.table.umount(second)
    assert w.names(b"/a") == [b"first"]
    w.table.umount(first)
    assert w.names(b"/a") == [b"under"]
    assert w.resolve(b"/a").dentry is a


def test_dotdot_from_a_mount_root_uses_the_mountpoints_parent(w):
    w.mkdir(b"/p")
    w.mkdir(b"/p/q")
    m = w.mount(b"/p/q")
    w.ctx.cwd = m.root
    assert w.resolve(b"..").dentry.name == b"p"
    assert vfs.getcwd(w.ctx) == b"/p/q"


def test_a_mount_over_the_root_shows_only_through_dotdot(w):
    w.mkdir(b"/old")
    m = w.table.mount(Tmpfs().root, w.ctx.root)
    assert w.names(b"/") == [b"old"]
    assert w.resolve(b"/..").dentry is m.root


def test_a_root_on_a_mountpoint_stops_dotdot_from_the_mount_above_it(w):
    jail = w.mkdir(b"/jail")
    m = w.table.mount(Tmpfs().root, jail)
    w.ctx.root = jail
    w.ctx.cwd = m.root
    assert w.resolve(b"..").dentry is m.root


def test_resolve_no_xdev(w):
    w.mkdir(b"/m")
    m = w.mount(b"/m")
    w.mkdir(b"/m/in")
    w.symlink(b"/m", b"/m/abs")
    x = abi.RESOLVE_NO_XDEV
    fails(errno.EXDEV, w.resolve, b"/m/in", flags=x)
    fails(errno.EXDEV, w.resolve, b"/m", flags=x)
    fails(errno.EXDEV, w.resolve, b"..", start=m.root, flags=x)
    fails(errno.EXDEV, w.resolve, b"abs", start=m.root, flags=x)
    # An absolute path argument may start on another mount than the start's.
    assert w.resolve(b"/", start=m.root, flags=x).dentry is w.ctx.root
    assert w.resolve(b"in/..", start=m.root, flags=x).dentry is m.root


def test_mount_table_rules(w):
    f = w.file(b"/f")
    d = w.mkdir(b"/d")
    fails(errno.ENOTDIR, w.table.mount, Tmpfs().root, f)
    fails(errno.EINVAL, w.table.umount, w.table.root)
    outer = w.table.mount(Tmpfs().root, d)
    inner_dir = vfs.mkdirat(w.ctx, ROOT, None, b"/d/x", 0o755)
    inner = w.table.mount(Tmpfs().root, inner_dir)
    assert w.table.mounts() == [w.table.root, outer, inner]
    fails(errno.EBUSY, w.table.umount, outer)
    w.table.umount(outer, detach=True)
    assert inner.parent is None and outer.parent is None
    assert w.table.mounts() == [w.table.root]
    fails(errno.EINVAL, w.table.umount, inner)
    other = MountTable(Tmpfs().root)
    fails(errno.EINVAL, other.mount, Tmpfs().root, d)
    fails(errno.ENOENT, w.table.mount, Tmpfs().root, inner_dir)  # in a detached mount


def test_mountpoints_are_busy(w):
    w.mkdir(b"/m")
    w.mkdir(b"/n")
    w.mount(b"/m")
    fails(errno.EBUSY, vfs.rmdirat, w.ctx, ROOT, None, b"/m")
    fails(errno.EBUSY, vfs.renameat2, w.ctx, ROOT, None, b"/m", None, b"/x")
    fails(errno.EBUSY, vfs.renameat2, w.ctx, ROOT, None, b"/n", None, b"/m")
    fails(errno.EXDEV, vfs.renameat2, w.ctx, ROOT, None, b"/n", None, b"/m/n")
    fails(errno.EXDEV, vfs.linkat, w.ctx, ROOT, None, b"/m", None, b"/y")


def test_read_only_mounts(w):
    w.mkdir(b"/ro")
    w.mount(b"/ro")
    w.file(b"/ro/f")
    vfs.mkdirat(w.ctx, ROOT, None, b"/ro/d", 0o755)
    w.lookup(b"/ro").mount.readonly = True
    fails(errno.EROFS, vfs.mkdirat, w.ctx, ROOT, None, b"/ro/new", 0o755)
    fails(errno.EEXIST, vfs.mkdirat, w.ctx, ROOT, None, b"/ro/d", 0o755)  # EEXIST first
    fails(errno.EROFS, vfs.unlinkat, w.ctx, ROOT, None, b"/ro/missing")  # EROFS first
    fails(errno.EROFS, vfs.rmdirat, w.ctx, ROOT, None, b"/ro/d")
    fails(errno.EROFS, vfs.renameat2, w.ctx, ROOT, None, b"/ro/f", None, b"/ro/g")
    fails(errno.EROFS, vfs.openat, w.ctx, ROOT, None, b"/ro/f", abi.O_WRONLY)
    fails(errno.EROFS, vfs.openat, w.ctx, ROOT, None, b"/ro/f", abi.O_RDONLY | abi.O_TRUNC)
    fails(errno.EROFS, vfs.openat, w.ctx, ROOT, None, b"/ro/new", abi.O_CREAT)
    assert vfs.openat(w.ctx, ROOT, None, b"/ro/f", abi.O_CREAT | abi.O_RDONLY)
    fails(errno.EEXIST, vfs.openat, w.ctx, ROOT, None, b"/ro/f", abi.O_CREAT | abi.O_EXCL)


# ---- adding names ----

def test_mkdir(w):
    w.ctx.umask = 0o027
    d = vfs.mkdirat(w.ctx, ROOT, None, b"/d", 0o7777)
    assert d.inode.mode == 0o1750  # S_ISUID/S_ISGID dropped, umask applied
    assert w.lookup(b"/").inode.nlink == 3
    assert vfs.mkdirat(w.ctx, ROOT, None, b"/e/", 0o755).name == b"e"
    for path in (b"/d", b"/", b"/d/.", b"/d/..", b"/d/../d"):
        fails(errno.EEXIST, vfs.mkdirat, w.ctx, ROOT, None, path, 0o755)
    fails(errno.ENOENT, vfs.mkdirat, w.ctx, ROOT, None, b"/no/x", 0o755)
    fails(errno.EACCES, vfs.mkdirat, w.ctx, NOBODY, None, b"/x", 0o755)
    fails(errno.ENAMETOOLONG, vfs.mkdirat, w.ctx, ROOT, None, b"/" + b"x" * 256, 0o755)


def test_new_files_belong_to_the_creator_and_setgid_directories_pass_their_group(w):
    w.mkdir(b"/shared", 0o2777)
    w.lookup(b"/shared").inode.gid = 50
    sub = vfs.mkdirat(w.ctx, NOBODY, None, b"/shared/sub", 0o755)
    assert (sub.inode.uid, sub.inode.gid, sub.inode.mode) == (65534, 50, 0o2755)
    f = vfs.openat(w.ctx, NOBODY, None, b"/shared/f", abi.O_CREAT, 0o2755)
    assert (f.inode.gid, f.inode.mode) == (50, 0o755)  # outsider: S_ISGID stripped
    g = vfs.openat(w.ctx, ALICE, None, b"/shared/g", abi.O_CREAT, 0o2755)
    assert g.inode.mode == 0o2755  # ALICE is in group 50


def test_mknod(w):
    fifo = vfs.mknodat(w.ctx, ROOT, None, b"/p", Kind.FIFO, 0o666)
    assert fifo.inode.kind is Kind.FIFO and fifo.inode.mode == 0o644
    assert vfs.mknodat(w.ctx, ROOT, None, b"/s", Kind.SOCK, 0o777).inode.kind is Kind.SOCK
    fails(errno.EPERM, vfs.mknodat, w.ctx, ROOT, None, b"/d", Kind.DIR, 0o755)
    fails(errno.ENOENT, vfs.mknodat, w.ctx, ROOT, None, b"/q/", Kind.FIFO, 0o644)
    fails(errno.EEXIST, vfs.mknodat, w.ctx, ROOT, None, b"/p/", Kind.FIFO, 0o644)


def test_symlink(w):
    link = vfs.symlinkat(w.ctx, ROOT, b"anything", None, b"/l")
    assert (link.inode.mode, link.inode.size, link.inode.readlink()) == (0o777, 8, b"anything")
    fails(errno.ENOENT, vfs.symlinkat, w.ctx, ROOT, b"", None, b"/e")
    fails(errno.ENAMETOOLONG, vfs.symlinkat, w.ctx, ROOT, b"x" * 4096, None, b"/e")
    assert vfs.symlinkat(w.ctx, ROOT, b"x" * 4095, None, b"/e").inode.size == 4095
    fails(errno.ENOENT, vfs.symlinkat, w.ctx, ROOT, b"t", None, b"/new/")
    fails(errno.EEXIST, vfs.symlinkat, w.ctx, ROOT, b"t", None, b"/l")
    fails(errno.EEXIST, vfs.symlinkat, w.ctx, ROOT, b"t", None, b"/l/")


def test_link(w):
    f = w.file(b"/f")
    w.mkdir(b"/d")
    w.symlink(b"f", b"/l")
    new = vfs.linkat(w.ctx, ROOT, None, b"/f", None, b"/d/g")
    assert new.inode is f.inode and f.inode.nlink == 2
    assert vfs.linkat(w.ctx, ROOT, None, b"/l", None, b"/l2").inode.is_symlink
    assert vfs.linkat(w.ctx, ROOT, None, b"/l", None, b"/f2", follow=True).inode is f.inode
    fails(errno.EPERM, vfs.linkat, w.ctx, ROOT, None, b"/d", None, b"/d2")
    fails(errno.EEXIST, vfs.linkat, w.ctx, ROOT, None, b"/f", None, b"/d/g")
    fails(errno.ENOENT, vfs.linkat, w.ctx, ROOT, None, b"/f", None, b"/new/")
    fails(errno.ENOTDIR, vfs.linkat, w.ctx, ROOT, None, b"/f/", None, b"/x")
    fails(errno.ENOENT, vfs.linkat, w.ctx, ROOT, None, b"/missing", None, b"/x")


def test_protected_hardlinks(w):
    w.mkdir(b"/tmp", 0o1777)
    w.file(b"/secret", 0o600)
    w.file(b"/shared", 0o666)
    w.file(b"/setuid", 0o4777)
    fails(errno.EPERM, vfs.linkat, w.ctx, NOBODY, None, b"/secret", None, b"/tmp/s")
    fails(errno.EPERM, vfs.linkat, w.ctx, NOBODY, None, b"/setuid", None, b"/tmp/u")
    vfs.linkat(w.ctx, NOBODY, None, b"/shared", None, b"/tmp/ok")
    w.table.protected_hardlinks = False
    vfs.linkat(w.ctx, NOBODY, None, b"/secret", None, b"/tmp/s")


# ---- removing names ----

def test_unlink(w):
    f = w.file(b"/f")
    w.mkdir(b"/d")
    w.symlink(b"d", b"/ld")
    vfs.linkat(w.ctx, ROOT, None, b"/f", None, b"/g")
    fails(errno.EISDIR, vfs.unlinkat, w.ctx, ROOT, None, b"/d")
    fails(errno.EISDIR, vfs.unlinkat, w.ctx, ROOT, None, b"/d/.")
    fails(errno.EISDIR, vfs.unlinkat, w.ctx, ROOT, None, b"/")
    fails(errno.ENOTDIR, vfs.unlinkat, w.ctx, ROOT, None, b"/f/")
    fails(errno.ENOTDIR, vfs.unlinkat, w.ctx, ROOT, None, b"/ld/")  # the link is no directory
    fails(errno.EISDIR, vfs.unlinkat, w.ctx, ROOT, None, b"/d/")
    fails(errno.ENOENT, vfs.unlinkat, w.ctx, ROOT, None, b"/missing")
    fails(errno.EACCES, vfs.unlinkat, w.ctx, NOBODY, None, b"/f")
    vfs.unlinkat(w.ctx, ROOT, None, b"/f")
    assert f.inode.nlink == 1 and f.dead
    vfs.unlinkat(w.ctx, ROOT, None, b"/ld")
    assert w.lookup(b"/d").inode.is_dir  # the link went, not its target


def test_rmdir(w):
    w.mkdir(b"/d")
    w.mkdir(b"/full")
    w.file(b"/full/f")
    w.file(b"/f")
    root = w.lookup(b"/").inode
    assert root.nlink == 4
    fails(errno.ENOTEMPTY, vfs.rmdirat, w.ctx, ROOT, None, b"/full")
    fails(errno.EINVAL, vfs.rmdirat, w.ctx, ROOT, None, b"/d/.")
    fails(errno.ENOTEMPTY, vfs.rmdirat, w.ctx, ROOT, None, b"/d/..")
    fails(errno.EBUSY, vfs.rmdirat, w.ctx, ROOT, None, b"/")
    fails(errno.ENOTDIR, vfs.rmdirat, w.ctx, ROOT, None, b"/f")
    fails(errno.ENOTDIR, vfs.rmdirat, w.ctx, ROOT, None, b"/f/")
    fails(errno.ENOENT, vfs.rmdirat, w.ctx, ROOT, None, b"/missing")
    vfs.rmdirat(w.ctx, ROOT, None, b"/d/")  # a trailing slash is fine for rmdir
    assert root.nlink == 3


def test_sticky_directories(w):
    w.mkdir(b"/tmp", 0o1777)
    w.file(b"/tmp/alices", creds=ALICE)
    w.file(b"/tmp/other", creds=ALICE)
    fails(errno.EPERM, vfs.unlinkat, w.ctx, NOBODY, None, b"/tmp/alices")
    fails(errno.EPERM, vfs.renameat2, w.ctx, NOBODY, None, b"/tmp/alices", None, b"/tmp/x")
    fowner = Credentials(65534, 65534, cap_fowner=True)
    vfs.renameat2(w.ctx, fowner, None, b"/tmp/alices", None, b"/tmp/moved")
    vfs.unlinkat(w.ctx, ALICE, None, b"/tmp/moved")  # its owner
    w.lookup(b"/tmp").inode.uid = NOBODY.uid
    vfs.unlinkat(w.ctx, NOBODY, None, b"/tmp/other")  # the directory's owner


def test_sticky_protects_the_target_of_a_rename_too(w):
    w.mkdir(b"/tmp", 0o1777)
    w.file(b"/tmp/alices", creds=ALICE)
    w.file(b"/tmp/mine", creds=NOBODY)
    fails(errno.EPERM, vfs.renameat2, w.ctx, NOBODY, None, b"/tmp/mine", None, b"/tmp/alices")


# ---- rename ----

def test_rename_moves_and_replaces(w):
    f = w.file(b"/f", data=b"abc")
    w.file(b"/g")
    vfs.renameat2(w.ctx, ROOT, None, b"/f", None, b"/g")
    assert w.names(b"/") == [b"g"] and w.lookup(b"/g").inode is f.inode
    d = w.mkdir(b"/d")
    w.mkdir(b"/e")
    w.mkdir(b"/e/empty")
    vfs.renameat2(w.ctx, ROOT, None, b"/d", None, b"/e/empty")
    assert w.lookup(b"/e/empty") is d and d.parent.name == b"e"
    assert (w.lookup(b"/").inode.nlink, w.lookup(b"/e").inode.nlink) == (3, 3)


def test_rename_errors(w):
    w.mkdir(b"/a")
    w.mkdir(b"/a/b")
    w.mkdir(b"/full")
    w.file(b"/full/x")
    w.file(b"/f")
    w.mkdir(b"/d")

    def rename(old, new, flags=0, creds=ROOT):
        vfs.renameat2(w.ctx, creds, None, old, None, new, flags)

    fails(errno.EINVAL, rename, b"/a", b"/a/b/c")  # into its own subtree
    fails(errno.EINVAL, rename, b"/a", b"/a/c")
    fails(errno.ENOTEMPTY, rename, b"/a/b", b"/a")  # over its own ancestor
    fails(errno.ENOTEMPTY, rename, b"/d", b"/full")
    fails(errno.ENOTDIR, rename, b"/d", b"/f")
    fails(errno.EISDIR, rename, b"/f", b"/d")
    fails(errno.ENOTDIR, rename, b"/f/", b"/g")
    fails(errno.ENOTDIR, rename, b"/f", b"/g/")
    fails(errno.ENOENT, rename, b"/missing", b"/g")
    fails(errno.ENOENT, rename, b"/f", b"/missing/g")
    fails(errno.EBUSY, rename, b"/d/.", b"/g")
    fails(errno.EBUSY, rename, b"/", b"/g")
    fails(errno.EBUSY, rename, b"/f", b"/d/..")
    fails(errno.EEXIST, rename, b"/f", b"/d/..", abi.RENAME_NOREPLACE)
    fails(errno.EEXIST, rename, b"/f", b"/d", abi.RENAME_NOREPLACE)
    fails(errno.ENOENT, rename, b"/f", b"/g", abi.RENAME_EXCHANGE)
    fails(errno.EINVAL, rename, b"/f", b"/g", abi.RENAME_NOREPLACE | abi.RENAME_EXCHANGE)
    fails(errno.EINVAL, rename, b"/f", b"/g", 8)
    fails(errno.EINVAL, rename, b"/f", b"/g", abi.RENAME_WHITEOUT)  # tmpfs has no whiteouts
    fails(errno.EACCES, rename, b"/f", b"/g", creds=NOBODY)
    rename(b"/d/", b"/e/")  # slashes after a directory are fine


def test_rename_exchange(w):
    w.mkdir(b"/p")
    w.mkdir(b"/q")
    d = w.mkdir(b"/p/d")
    f = w.file(b"/q/f")
    vfs.renameat2(w.ctx, ROOT, None, b"/p/d", None, b"/q/f", abi.RENAME_EXCHANGE)
    assert w.lookup(b"/q/f") is d and w.lookup(b"/p/d") is f
    assert (w.lookup(b"/p").inode.nlink, w.lookup(b"/q").inode.nlink) == (2, 3)
    assert d.inode.parent is w.lookup(b"/q").inode
    w.mkdir(b"/q/f/x")
    fails(errno.EINVAL, vfs.renameat2, w.ctx, ROOT, None, b"/q/f", None, b"/q/f/x",
          abi.RENAME_EXCHANGE)
    fails(errno.EINVAL, vfs.renameat2, w.ctx, ROOT, None, b"/q/f/x", None, b"/q/f",
          abi.RENAME_EXCHANGE)


def test_rename_between_two_names_of_one_file_does_nothing(w):
    f = w.file(b"/f")
    vfs.linkat(w.ctx, ROOT, None, b"/f", None, b"/g")
    vfs.renameat2(w.ctx, ROOT, None, b"/f", None, b"/g")
    assert w.names(b"/") == [b"f", b"g"] and f.inode.nlink == 2


def test_moving_a_directory_to_another_parent_needs_write_access_to_it(w):
    w.mkdir(b"/a", 0o777)
    w.mkdir(b"/b", 0o777)
    w.mkdir(b"/a/d", 0o555, creds=NOBODY)
    fails(errno.EACCES, vfs.renameat2, w.ctx, NOBODY, None, b"/a/d", None, b"/b/d")
    vfs.renameat2(w.ctx, NOBODY, None, b"/a/d", None, b"/a/e")  # same parent: '..' stays


def test_a_cwd_follows_its_directory_through_a_rename(w):
    w.mkdir(b"/a")
    w.mkdir(b"/b")
    d = w.mkdir(b"/a/d")
    w.ctx.cwd = d
    vfs.renameat2(w.ctx, ROOT, None, b"/a/d", None, b"/b/e")
    assert vfs.getcwd(w.ctx) == b"/b/e"
    assert w.resolve(b"..").dentry.name == b"b"


def test_replaced_dentries_are_dead(w):
    w.file(b"/f")
    g = w.file(b"/g")
    vfs.renameat2(w.ctx, ROOT, None, b"/f", None, b"/g")
    assert g.dead and g.inode.nlink == 0


def test_dentries_nobody_holds_are_dropped_and_held_ones_keep_their_identity(w):
    import gc
    import weakref
    d = w.mkdir(b"/d")
    w.mkdir(b"/d/m")
    m = w.mount(b"/d/m")
    loose = weakref.ref(w.file(b"/d/f"))
    gc.collect()
    assert loose() is not None  # kept a while by the table's LRU of recent dentries
    w.table.recently_used.clear()
    gc.collect()
    assert loose() is None
    assert w.lookup(b"/d/f").name == b"f"  # made afresh
    assert w.lookup(b"/d") is d
    assert w.lookup(b"/d/m") is m.root  # the mountpoint is held by its mount


# ---- timestamps ----

def test_parent_times_change_on_create_unlink_rename_and_link():
    ticks = iter(range(1, 10_000))
    w = World(clock=lambda: next(ticks))
    d = w.mkdir(b"/d")
    e = w.mkdir(b"/e")

    def stamps(dentry):
        return dentry.inode.mtime_ns, dentry.inode.ctime_ns

    before = stamps(d)
    f = w.file(b"/d/f")
    assert stamps(d) > before and d.inode.mtime_ns == d.inode.ctime_ns
    assert f.inode.mtime_ns >= before[0]
    before, f_ctime = stamps(d), f.inode.ctime_ns
    vfs.linkat(w.ctx, ROOT, None, b"/d/f", None, b"/d/g")
    assert stamps(d) > before and f.inode.ctime_ns > f_ctime
    before_d, before_e, f_ctime = stamps(d), stamps(e), f.inode.ctime_ns
    vfs.renameat2(w.ctx, ROOT, None, b"/d/g", None, b"/e/g")
    assert stamps(d) > before_d and stamps(e) > before_e and f.inode.ctime_ns > f_ctime
    before, f_ctime, f_mtime = stamps(e), f.inode.ctime_ns, f.inode.mtime_ns
    vfs.unlinkat(w.ctx, ROOT, None, b"/e/g")
    assert stamps(e) > before and f.inode.ctime_ns > f_ctime and f.inode.mtime_ns == f_mtime
    f_mtime = f.inode.mtime_ns
    vfs.openat(w.ctx, ROOT, None, b"/d/f", abi.O_WRONLY | abi.O_TRUNC)
    assert f.inode.mtime_ns > f_mtime  # O_TRUNC stamps even an empty file


# ---- open ----

def test_open_creates_with_the_umask(w):
    w.ctx.umask = 0o077
    f = vfs.openat(w.ctx, ROOT, None, b"/f", abi.O_CREAT | abi.O_WRONLY, 0o4666)
    assert (f.inode.kind, f.inode.mode, f.inode.uid) == (Kind.REG, 0o4600, 0)
    again = vfs.openat(w.ctx, ROOT, None, b"/f", abi.O_CREAT | abi.O_WRONLY, 0o777)
    assert again is f and f.inode.mode == 0o4600
    fails(errno.EEXIST, vfs.openat, w.ctx, ROOT, None, b"/f", abi.O_CREAT | abi.O_EXCL)
    fails(errno.ENOENT, vfs.openat, w.ctx, ROOT, None, b"/g", abi.O_RDONLY)
    fails(errno.EACCES, vfs.openat, w.ctx, NOBODY, None, b"/g", abi.O_CREAT)


def test_open_creat_through_a_dangling_symlink_creates_its_target(w):
    d = w.mkdir(b"/d")
    w.symlink(b"/d/target", b"/l")
    f = vfs.openat(w.ctx, ROOT, None, b"/l", abi.O_CREAT | abi.O_WRONLY, 0o644)
    assert f.parent is d and f.name == b"target"
    w.symlink(b"/d/other", b"/l2")
    fails(errno.EEXIST, vfs.openat, w.ctx, ROOT, None, b"/l2", abi.O_CREAT | abi.O_EXCL)
    assert w.names(b"/d") == [b"target"]
    w.symlink(b"/d/dir/", b"/l3")
    fails(errno.EISDIR, vfs.openat, w.ctx, ROOT, None, b"/l3", abi.O_CREAT)


def test_open_errors(w):
    w.mkdir(b"/d")
    w.file(b"/f", 0o600, data=b"data")
    w.symlink(b"f", b"/l")
    w.symlink(b"d", b"/ld")
    vfs.mknodat(w.ctx, ROOT, None, b"/s", Kind.SOCK, 0o666)

    def open_(path, flags, creds=ROOT, mode=0o644):
        return vfs.openat(w.ctx, creds, None, path, flags, mode)

    fails(errno.ELOOP, open_, b"/l", abi.O_NOFOLLOW)
    fails(errno.ENOTDIR, open_, b"/ld", abi.O_NOFOLLOW | abi.O_DIRECTORY)
    assert open_(b"/l", abi.O_PATH | abi.O_NOFOLLOW).inode.is_symlink
    assert open_(b"/ld", abi.O_DIRECTORY).name == b"d"
    fails(errno.EINVAL, open_, b"/x", abi.O_CREAT | abi.O_DIRECTORY)
    fails(errno.EISDIR, open_, b"/x/", abi.O_CREAT)
    fails(errno.EISDIR, open_, b"/f/", abi.O_CREAT)  # before the lookup: not ENOTDIR
    fails(errno.ENOTDIR, open_, b"/f/", abi.O_RDONLY)
    fails(errno.EISDIR, open_, b"/d", abi.O_CREAT)
    fails(errno.EISDIR, open_, b"/", abi.O_CREAT)
    fails(errno.EISDIR, open_, b"/d", abi.O_WRONLY)
    fails(errno.EISDIR, open_, b"/d", abi.O_RDONLY | abi.O_TRUNC)
    fails(errno.ENOTDIR, open_, b"/f", abi.O_DIRECTORY)
    fails(errno.EACCES, open_, b"/f", abi.O_RDONLY, creds=NOBODY)
    fails(errno.EPERM, open_, b"/d", abi.O_RDONLY | abi.O_NOATIME, creds=NOBODY)
    fails(errno.ENXIO, open_, b"/s", abi.O_RDONLY)
    fails(errno.EOPNOTSUPP, open_, b"/d", abi.O_TMPFILE_BIT | abi.O_DIRECTORY | abi.O_RDWR)
    fails(errno.EAGAIN, vfs.openat, w.ctx, ROOT, None, b"/f", abi.O_CREAT,
          resolve_flags=abi.RESOLVE_CACHED)
    open_(b"/f", abi.O_RDWR | abi.O_TRUNC)
    assert w.lookup(b"/f").inode.size == 0
    w.lookup(b"/f").inode.mode = 0o4666
    open_(b"/f", abi.O_WRONLY | abi.O_TRUNC, creds=NOBODY)
    assert w.lookup(b"/f").inode.mode == 0o666  # truncation is a write: setuid goes


def test_open_creat_of_someone_elses_file_in_a_sticky_directory(w):
    w.mkdir(b"/tmp", 0o1777)
    w.file(b"/tmp/alices", 0o666, creds=ALICE)
    w.symlink(b"/", b"/tmp/link", creds=ALICE)
    flags = abi.O_CREAT | abi.O_WRONLY
    fails(errno.EACCES, vfs.openat, w.ctx, ROOT, None, b"/tmp/alices", flags)
    fails(errno.EACCES, vfs.openat, w.ctx, ROOT, None, b"/tmp/link", flags | abi.O_NOFOLLOW)
    w.table.protected_regular = 0
    vfs.openat(w.ctx, ROOT, None, b"/tmp/alices", flags)
    vfs.openat(w.ctx, ROOT, None, b"/tmp/alices", abi.O_WRONLY)  # without O_CREAT: fine


def test_noexec_mounts_refuse_exec_opens():
    from edgevisor.sentry.vfs.permission import MAY_EXEC, may_open
    fs = Tmpfs()
    f = inode_of(fs, 0o755)
    fails(errno.EACCES, may_open, ROOT, f, MAY_EXEC, noexec=True)
    may_open(ROOT, f, MAY_EXEC, noexec=False)


# ---- chdir and getcwd ----

def test_chdir(w):
    w.mkdir(b"/d", 0o700)
    w.file(b"/f")
    fails(errno.ENOTDIR, vfs.chdir, w.ctx, ROOT, None, b"/f")
    fails(errno.ENOENT, vfs.chdir, w.ctx, ROOT, None, b"/missing")
    fails(errno.EACCES, vfs.chdir, w.ctx, NOBODY, None, b"/d")
    vfs.chdir(w.ctx, ROOT, None, b"/d")
    assert vfs.getcwd(w.ctx) == b"/d"
    vfs.chdir(w.ctx, ROOT, None, b"..")
    assert vfs.getcwd(w.ctx) == b"/"


def test_d_path_and_is_beneath(w):
    w.mkdir(b"/a")
    m = w.mount(b"/a")
    b = vfs.mkdirat(w.ctx, ROOT, None, b"/a/b", 0o755)
    assert vfs.d_path(b, w.ctx.root) == (b"/a/b", True)
    assert vfs.d_path(b, m.root) == (b"/b", True)
    assert vfs.is_beneath(b, w.ctx.root) and vfs.is_beneath(b, m.root)
    assert not vfs.is_beneath(w.ctx.root, m.root)


# ---- tmpfs on its own ----

def test_tmpfs_numbers_like_linux():
    fs = Tmpfs(mode=0o755)
    root = fs.root
    assert (root.ino, root.nlink, root.size, root.mode) == (1, 2, 40, 0o755)
    d = root.create(b"d", Kind.DIR, 0o755, 0, 0)
    root.create(b"f", Kind.REG, 0o644, 0, 0)
    link = root.symlink(b"l", b"target", 0, 0)
    assert (root.nlink, root.size) == (3, 40 + 3 * 20)
    assert (d.ino, link.size, link.st_mode) == (2, 6, stat.S_IFLNK | 0o777)
    root.rename(b"f", d, b"g")
    assert (root.size, d.size) == (40 + 2 * 20, 40 + 20)
    assert root.lookup(b"f") is None


def test_tmpfs_file_data():
    fs = Tmpfs()
    f = fs.root.create(b"f", Kind.REG, 0o644, 0, 0)
    assert f.write(3, b"abc") == 3
    assert (f.size, f.read(0, 10)) == (6, b"\0\0\0abc")
    f.truncate(2)
    assert (f.size, f.read(0, 10)) == (2, b"\0\0")
    f.truncate(4)
    assert f.read(1, 2) == b"\0\0"
    fails(errno.EINVAL, f.write, -1, b"x")
    fails(errno.EISDIR, fs.root.read, 0, 1)
    fails(errno.EINVAL, f.readlink)
    fails(errno.ENOTDIR, f.lookup, b"x")


def test_tmpfs_refuses_what_would_corrupt_it_whoever_asks():
    fs = Tmpfs()
    a = fs.root.create(b"a", Kind.DIR, 0o755, 0, 0)
    b = a.create(b"b", Kind.DIR, 0o755, 0, 0)
    b.create(b"x", Kind.REG, 0o644, 0, 0)
    fails(errno.EINVAL, fs.root.rename, b"a", b, b"a")
    fails(errno.ENOTEMPTY, a.rmdir, b"b")
    fails(errno.EEXIST, fs.root.create, b"a", Kind.REG, 0o644, 0, 0)
    fails(errno.EXDEV, fs.root.rename, b"a", Tmpfs().root, b"a")
    fails(errno.EXDEV, fs.root.link, b"z", Tmpfs().root.create(b"q", Kind.REG, 0, 0, 0))
    fails(errno.EPERM, fs.root.link, b"z", a)
    fails(errno.EISDIR, fs.root.unlink, b"a")


# ---- the property: no walk escapes its root ----

JAIL_NAMES = [b"a", b"b", b"c", b"out"]
LINK_BODIES = [b"/", b"/out", b"..", b"../..", b"../../out", b"/jail", b"a", b"a/b", b"../a",
               b"/a/../..", b"c", b"self", b"./.."]

tree_ops = st.lists(
    st.tuples(st.sampled_from(["dir", "dir", "file", "link", "mount"]),
              st.integers(0, 30), st.sampled_from(JAIL_NAMES), st.sampled_from(LINK_BODIES)),
    max_size=40)
walk_paths = st.builds(
    lambda absolute, comps, trailing: (b"/" if absolute else b"") + b"/".join(comps)
    + (b"/" if trailing else b""),
    st.booleans(), st.lists(st.sampled_from(JAIL_NAMES * 2 + [b"..", b"..", b".", b"self"]),
                            min_size=1, max_size=5), st.booleans())
walk_flags = st.sampled_from([0, abi.RESOLVE_BENEATH, abi.RESOLVE_IN_ROOT, abi.RESOLVE_NO_XDEV,
                              abi.RESOLVE_IN_ROOT | abi.RESOLVE_NO_XDEV])


def _build(ops):
    """A world whose task is chrooted to /jail, outside of which lie /out and friends; inside,
    a random tree of directories, files, symlinks (some aimed out) and mounts."""
    w = World()
    for name in (b"/out", b"/out/a", b"/jail", b"/a"):
        w.mkdir(name)
    jail = w.lookup(b"/jail")
    w.ctx.root = w.ctx.cwd = jail
    dirs = [jail]
    # A skeleton, so that most random paths find something before the random part.
    for name in (b"/a", b"/a/a", b"/a/b", b"/b", b"/b/a"):
        dirs.append(vfs.mkdirat(w.ctx, ROOT, None, name, 0o755))
    w.symlink(b"../../out", b"/a/out")
    w.symlink(b"/..", b"/b/c")
    for kind, where, name, body in ops:
        parent = dirs[where % len(dirs)]
        try:
            if kind == "dir":
                dirs.append(vfs.mkdirat(w.ctx, ROOT, parent, name, 0o755))
            elif kind == "file":
                vfs.openat(w.ctx, ROOT, parent, name, abi.O_CREAT | abi.O_EXCL, 0o644)
            elif kind == "link":
                vfs.symlinkat(w.ctx, ROOT, body, parent, name)
            else:
                m = w.table.mount(Tmpfs().root, parent)
                dirs.append(m.root)
        except OSError:
            pass
    return w, dirs


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=tree_ops, queries=st.lists(st.tuples(st.integers(0, 30), walk_paths, walk_flags,
                                               st.booleans()), min_size=1, max_size=10))
def test_no_walk_leaves_its_root(ops, queries):
    w, dirs = _build(ops)
    root = w.ctx.root
    for where, path, flags, follow in queries:
        start = dirs[where % len(dirs)]
        scoped = flags & (abi.RESOLVE_BENEATH | abi.RESOLVE_IN_ROOT)
        walks = (
            lambda: w.resolve(path, follow=follow, start=start, flags=flags),  # noqa: B023
            lambda: vfs.resolve_parent(w.ctx, ROOT, start, path, resolve_flags=flags),  # noqa: B023
        )
        for walk in walks:
            try:
                res = walk()
            except OSError:
                continue
            for d in (res.parent, res.dentry):
                if d is None:
                    continue
                assert vfs.is_beneath(d, root), (path, flags, vfs.d_path(d, root))
                if scoped:
                    assert vfs.is_beneath(d, start), (path, flags, vfs.d_path(d, start))


def test_the_property_checker_sees_an_escape():
    """is_beneath, on which the property rests, does notice a dentry outside the root."""
    w, _ = _build([])
    out = w.ctx.root.parent.child(b"out")
    assert not vfs.is_beneath(out, w.ctx.root)
    assert vfs.is_beneath(w.ctx.root, w.table.root.root)
