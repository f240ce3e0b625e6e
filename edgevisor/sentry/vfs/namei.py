"""The calls that add and remove names: mkdir, mknod, symlink, link, unlink, rmdir.

Each check comes in the order Linux makes it (fs/namei.c), so that a call breaking several
rules at once fails with the errno Linux would give.
"""

import errno
import stat

from ... import abi
from .context import FSContext
from .credentials import Credentials
from .dentry import Dentry
from .errors import error
from .inode import Kind
from .permission import init_owner, may_create, may_delete, may_linkat
from .resolve import Resolved, lookup_child, resolve, resolve_parent

_S_IALLUGO = 0o7777


def mkdirat(ctx: FSContext, creds: Credentials, start: Dentry | None, path: bytes,
            mode: int) -> Dentry:
    res = _new_name(ctx, creds, start, path, want_dir=True)
    return _create(ctx, creds, res, Kind.DIR, mode & (0o777 | stat.S_ISVTX))


def mknodat(ctx: FSContext, creds: Credentials, start: Dentry | None, path: bytes,
            kind: Kind, mode: int) -> Dentry:
    """mknod(2) of a regular file, fifo or socket (device nodes belong to fsimpl/dev)."""
    if kind is Kind.DIR:
        raise error(errno.EPERM)
    if kind not in (Kind.REG, Kind.FIFO, Kind.SOCK):
        raise error(errno.EINVAL)
    res = _new_name(ctx, creds, start, path)
    return _create(ctx, creds, res, kind, mode & _S_IALLUGO)


def symlinkat(ctx: FSContext, creds: Credentials, target: bytes, start: Dentry | None,
              path: bytes) -> Dentry:
    # The target is a string like any path argument: empty or PATH_MAX long fails first.
    if not target:
        raise error(errno.ENOENT)
    if len(target) >= abi.PATH_MAX:
        raise error(errno.ENAMETOOLONG)
    res = _new_name(ctx, creds, start, path)
    dir = res.parent.inode
    may_create(creds, dir)
    _, uid, gid = init_owner(creds, dir, Kind.LNK, 0o777)
    return res.parent.instantiate(res.name, dir.symlink(res.name, target, uid, gid))


def linkat(ctx: FSContext, creds: Credentials, old_start: Dentry | None, old_path: bytes,
           new_start: Dentry | None, new_path: bytes, *, follow: bool = False) -> Dentry:
    """link(2); `follow` is AT_SYMLINK_FOLLOW."""
    old = resolve(ctx, creds, old_start, old_path, follow_last=follow)
    if old.dentry is None:
        raise error(errno.ENOENT)
    res = _new_name(ctx, creds, new_start, new_path)
    if old.dentry.mount is not res.parent.mount:
        raise error(errno.EXDEV)
    inode = old.dentry.inode
    may_linkat(creds, inode, res.parent.mount.table.protected_hardlinks)
    dir = res.parent.inode
    may_create(creds, dir)
    if inode.is_dir:
        raise error(errno.EPERM)
    if inode.nlink == 0:
        raise error(errno.ENOENT)  # no bringing an unlinked file back
    dir.link(res.name, inode)
    return res.parent.instantiate(res.name, inode)


def unlinkat(ctx: FSContext, creds: Credentials, start: Dentry | None, path: bytes) -> None:
    res = resolve_parent(ctx, creds, start, path)
    if res.is_dots:
        raise error(errno.EISDIR)
    res.parent.mount.want_write()
    victim = lookup_child(res.parent, res.name)
    if victim is None:
        raise error(errno.ENOENT)
    if res.trailing_slash:
        raise error(errno.EISDIR if victim.inode.is_dir else errno.ENOTDIR)
    dir = res.parent.inode
    may_delete(creds, dir, victim, isdir=False)
    if victim.mount.table.is_mountpoint(victim):
        raise error(errno.EBUSY)
    dir.unlink(res.name)
    victim.d_delete()


def rmdirat(ctx: FSContext, creds: Credentials, start: Dentry | None, path: bytes) -> None:
    """rmdir(2), and unlinkat(AT_REMOVEDIR). A trailing '/' is allowed, even after a name
    that is not a directory (which then fails ENOTDIR, not because of the slash)."""
    res = resolve_parent(ctx, creds, start, path)
    if res.name == b"..":
        raise error(errno.ENOTEMPTY)
    if res.name == b".":
        raise error(errno.EINVAL)
    if res.name == b"/":
        raise error(errno.EBUSY)
    res.parent.mount.want_write()
    victim = lookup_child(res.parent, res.name)
    if victim is None:
        raise error(errno.ENOENT)
    dir = res.parent.inode
    may_delete(creds, dir, victim, isdir=True)
    if victim.mount.table.is_mountpoint(victim):
        raise error(errno.EBUSY)
    dir.rmdir(res.name)
    victim.inode.dead = True
    victim.d_delete()


def _new_name(ctx, creds, start, path, *, want_dir: bool = False) -> Resolved:
    """Linux's filename_create: the directory and name for something new. The name must be
    an ordinary one that does not exist; a trailing '/' is only for mkdir. A read-only
    mount is reported only after those, so that mkdir of an existing name is EEXIST."""
    res = resolve_parent(ctx, creds, start, path)
    if res.is_dots:
        raise error(errno.EEXIST)
    readonly = res.parent.mount.readonly
    if lookup_child(res.parent, res.name) is not None:
        raise error(errno.EEXIST)
    if res.trailing_slash and not want_dir:
        raise error(errno.ENOENT)
    if readonly:
        raise error(errno.EROFS)
    return res


def _create(ctx: FSContext, creds: Credentials, res: Resolved, kind: Kind, mode: int,
            make=None) -> Dentry:
    dir = res.parent.inode
    may_create(creds, dir)
    mode, uid, gid = init_owner(creds, dir, kind, mode & ~ctx.umask)
    inode = (dir.create(res.name, kind, mode, uid, gid) if make is None
             else make(res.parent, res.name, mode, uid, gid))
    return res.parent.instantiate(res.name, inode)


def create_in(ctx: FSContext, creds: Credentials, res: Resolved, mode: int,
              make=None) -> Dentry:
    """Creates the regular file open(O_CREAT) did not find at `res`: with the directory
    inode's `create`, or `make(directory dentry, name, mode, uid, gid)`, which returns the
    new inode (the caller's way of making it, as Linux's atomic_open)."""
    return _create(ctx, creds, res, Kind.REG, mode & _S_IALLUGO, make)
