"""Path resolution: Linux's path walk (fs/namei.c) over dentries and mounts.

A walk starts at the task's root (absolute paths) or at `start` (a dirfd's dentry, or the
cwd), checks search permission on every directory it looks a name up in, enters the topmost
mount on each dentry it arrives at (not on the start, nor on the root it jumps to: a mount
made over the root shows only through '/..', as in Linux), leaves a mount through '..' at its
root, and follows symlinks relative to their directory, absolute ones from the root.

`..` never climbs above the root: the task's root, or the start itself under RESOLVE_BENEATH
(where trying is EXDEV, as is any absolute path or symlink) and RESOLVE_IN_ROOT (where it
stays put, and absolute paths and symlinks begin at the start). A cwd that is outside the
root to begin with walks up freely, as in Linux.
"""

import errno
from dataclasses import dataclass

from ... import abi
from .context import FSContext
from .credentials import Credentials
from .dentry import Dentry
from .errors import error
from .permission import MAY_EXEC, may_follow_link, permission

_VALID_RESOLVE = (abi.RESOLVE_NO_XDEV | abi.RESOLVE_NO_MAGICLINKS | abi.RESOLVE_NO_SYMLINKS
                  | abi.RESOLVE_BENEATH | abi.RESOLVE_IN_ROOT | abi.RESOLVE_CACHED)
_SCOPED = abi.RESOLVE_BENEATH | abi.RESOLVE_IN_ROOT


@dataclass(frozen=True)
class Resolved:
    """The end of a walk. `parent` is the directory the last component was looked up in and
    `name` that component as written, or b'.', b'..', or b'/' for a path of slashes alone
    (Linux's LAST_DOT, LAST_DOTDOT, LAST_ROOT); `dentry` is what it named, None when the
    name does not exist (or was not looked up: `resolve_parent`). `trailing_slash` says the
    last component was followed by a '/'."""

    parent: Dentry
    name: bytes
    dentry: Dentry | None
    trailing_slash: bool = False

    @property
    def is_dots(self) -> bool:
        """True unless `name` is an ordinary name: '.', '..' or the root itself."""
        return self.name in (b".", b"..", b"/")


def resolve(ctx: FSContext, creds: Credentials, start: Dentry | None, path: bytes, *,
            follow_last: bool, must_dir: bool = False, resolve_flags: int = 0,
            create: bool = False) -> Resolved:
    """Resolves `path` in full (Linux's path_lookupat): a trailing symlink is followed when
    `follow_last` or when a '/' follows it, and the result must be a directory (ENOTDIR)
    when `must_dir` or when a '/' follows it. A missing last component is not an error here:
    the result has dentry None, and its parent is where it would be created (at the end of a
    dangling trailing symlink, if one was followed).

    `create` is open(O_CREAT)'s walk, where a '/' after the last name is EISDIR before the
    name is even looked up."""
    walk = _Walk(ctx, creds, start, path, resolve_flags)
    comps, trailing = walk.begin(path)
    if not comps:
        return Resolved(walk.cur, b"/", walk.cur, True)
    follow = follow_last
    while True:
        if trailing:
            follow = must_dir = True
        last = walk.walk_prefix(comps)
        parent = walk.cur
        if last == b".":
            dentry = parent
            break
        if last == b"..":
            walk.dotdot()
            dentry = walk.cur
            break
        if create and trailing:
            raise error(errno.EISDIR)
        found = walk.lookup(last)
        if found is None:
            return Resolved(parent, last, None, trailing)
        found = walk.cross(found)
        if not (follow and found.inode.is_symlink):
            dentry = found
            break
        comps, trailing = walk.enter_link(found, trailing_in=parent)
        if comps is None:  # a magic link jumped straight to its target
            dentry = walk.cur
            break
        if not comps:  # a link to "/"
            return Resolved(walk.cur, b"/", walk.cur, True)
    if must_dir and not dentry.inode.is_dir:
        raise error(errno.ENOTDIR)
    return Resolved(parent, last, dentry, trailing)


def resolve_parent(ctx: FSContext, creds: Credentials, start: Dentry | None, path: bytes, *,
                   resolve_flags: int = 0) -> Resolved:
    """Walks to the directory holding the last component and stops there (Linux's
    filename_parentat, for the calls that add or remove a name): dentry is None; look the
    name up with `lookup_child` once the caller has made its checks that come first."""
    walk = _Walk(ctx, creds, start, path, resolve_flags)
    comps, trailing = walk.begin(path)
    if not comps:
        return Resolved(walk.cur, b"/", None, True)
    last = walk.walk_prefix(comps)
    return Resolved(walk.cur, last, None, trailing)


def lookup_child(parent: Dentry, name: bytes) -> Dentry | None:
    """The dentry of `name` in directory `parent`, without entering a mount on it or
    following it: the name itself, as unlink, rmdir, rename and link act on."""
    if parent.inode.dead:
        raise error(errno.ENOENT)  # the directory was removed (IS_DEADDIR)
    if len(name) > abi.NAME_MAX:
        raise error(errno.ENAMETOOLONG)
    return parent.child(name)


class _Walk:
    """The state of one walk (Linux's nameidata)."""

    __slots__ = ("creds", "cur", "flags", "links", "root")

    def __init__(self, ctx, creds, start, path, flags):
        if flags & ~_VALID_RESOLVE or flags & _SCOPED == _SCOPED:
            raise error(errno.EINVAL)
        if not path:
            raise error(errno.ENOENT)
        if len(path) >= abi.PATH_MAX:
            raise error(errno.ENAMETOOLONG)
        if start is None:
            start = ctx.cwd
        self.creds = creds
        self.flags = flags
        self.root = start if flags & _SCOPED else ctx.root
        self.cur = start
        self.links = 0
        relative = path[:1] != b"/" or flags & abi.RESOLVE_IN_ROOT
        if relative and not start.inode.is_dir:
            raise error(errno.ENOTDIR)

    def begin(self, path: bytes) -> tuple[list[bytes], bool]:
        if path[:1] == b"/" and not self.flags & abi.RESOLVE_IN_ROOT:
            self.jump_root(initial=True)
        return _split(path)

    def jump_root(self, *, initial: bool) -> None:
        if self.flags & abi.RESOLVE_BENEATH:
            raise error(errno.EXDEV)
        # An absolute path argument may start on another mount; an absolute symlink may not.
        if (self.flags & abi.RESOLVE_NO_XDEV and not initial
                and self.cur.mount is not self.root.mount):
            raise error(errno.EXDEV)
        self.cur = self.root

    def walk_prefix(self, comps: list[bytes]) -> bytes:
        """Walks every component but the last (Linux's link_path_walk), leaving `cur` at the
        directory the last one is to be looked up in, which must let us search it too."""
        last = len(comps) - 1
        for i, name in enumerate(comps):
            permission(self.creds, self.cur.inode, MAY_EXEC)
            if i == last:
                return name
            self.step(name)
            if not self.cur.inode.is_dir:
                raise error(errno.ENOTDIR)
        raise AssertionError("no components")

    def step(self, name: bytes) -> None:
        """Moves `cur` through one inner component, following a symlink wherever it leads."""
        if name == b".":
            return
        if name == b"..":
            self.dotdot()
            return
        found = self.lookup(name)
        if found is None:
            raise error(errno.ENOENT)
        found = self.cross(found)
        if not found.inode.is_symlink:
            self.cur = found
            return
        comps, _ = self.enter_link(found, trailing_in=None)
        if comps:
            self.step(self.walk_prefix(comps))
        elif comps is None and not self.cur.inode.is_dir:
            raise error(errno.ENOTDIR)

    def lookup(self, name: bytes) -> Dentry | None:
        return lookup_child(self.cur, name)

    def cross(self, dentry: Dentry) -> Dentry:
        top = dentry.mount.table.traverse(dentry)
        if top is not dentry and self.flags & abi.RESOLVE_NO_XDEV:
            raise error(errno.EXDEV)
        return top

    def dotdot(self) -> None:
        """Linux's follow_dotdot, then the step into the parent (which enters mounts)."""
        cur = self.cur
        if cur is self.root:
            parent = self._stay(cur)
        elif cur.is_root:
            mountpoint = self._mountpoint_above(cur.mount)
            if mountpoint is None:
                parent = self._stay(cur)
            else:
                if self.flags & abi.RESOLVE_NO_XDEV:
                    raise error(errno.EXDEV)
                parent = mountpoint.parent
        else:
            parent = cur.parent
        self.cur = self.cross(parent)

    def _stay(self, cur: Dentry) -> Dentry:
        if self.flags & abi.RESOLVE_BENEATH:
            raise error(errno.EXDEV)
        return cur

    def _mountpoint_above(self, mount) -> Dentry | None:
        """Linux's choose_mountpoint: the first mountpoint up the mount tree that is not
        itself a mount root, unless the walk's root comes first."""
        while mount.parent is not None:
            point = mount.mountpoint
            mount = mount.parent
            if point is self.root:
                return None
            if not point.is_root:
                return point
        return None

    def enter_link(self, link: Dentry, *, trailing_in: Dentry | None):
        """Starts following `link` (Linux's pick_link): counts it, checks it may be followed,
        and jumps to the root for an absolute body. Returns the body's components and whether
        it ends in '/', or (None, False) after a magic link moved `cur` to its target.
        `trailing_in` is the directory of a trailing symlink."""
        if self.links >= abi.SYMLOOP_MAX:
            raise error(errno.ELOOP)
        self.links += 1
        if trailing_in is not None:
            may_follow_link(self.creds, trailing_in.inode, link.inode,
                            link.mount.table.protected_symlinks)
        if self.flags & abi.RESOLVE_NO_SYMLINKS or link.mount.nosymfollow:
            raise error(errno.ELOOP)
        if getattr(link.inode, "magic", False):
            # /proc's fd/N, cwd, root, exe: Linux's nd_jump_link, which lands on the object
            # itself rather than following a name. Returns (None, False).
            if self.flags & abi.RESOLVE_NO_MAGICLINKS:
                raise error(errno.ELOOP)
            target = link.inode.jump()
            if self.flags & abi.RESOLVE_NO_XDEV and target.mount is not self.cur.mount:
                raise error(errno.EXDEV)
            if self.flags & _SCOPED:
                raise error(errno.EXDEV)  # "not currently safe for scoped lookups"
            self.cur = target
            return None, False
        body = link.inode.readlink()
        if not body:
            raise error(errno.ENOENT)
        if body[:1] == b"/":
            self.jump_root(initial=False)
        return _split(body)


def _split(path: bytes) -> tuple[list[bytes], bool]:
    return [c for c in path.split(b"/") if c], path.endswith(b"/")
