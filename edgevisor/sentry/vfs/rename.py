"""rename(2) and renameat2(2): Linux's do_renameat2 and vfs_rename, checks in their order."""

import errno

from ... import abi
from .context import FSContext
from .credentials import Credentials
from .dentry import Dentry
from .errors import error
from .permission import MAY_WRITE, may_create, may_delete, permission
from .resolve import lookup_child, resolve_parent

_VALID = abi.RENAME_NOREPLACE | abi.RENAME_EXCHANGE | abi.RENAME_WHITEOUT


def renameat2(ctx: FSContext, creds: Credentials, old_start: Dentry | None, old_path: bytes,
              new_start: Dentry | None, new_path: bytes, flags: int = 0) -> None:
    if flags & ~_VALID:
        raise error(errno.EINVAL)
    if flags & (abi.RENAME_NOREPLACE | abi.RENAME_WHITEOUT) and flags & abi.RENAME_EXCHANGE:
        raise error(errno.EINVAL)
    exchange = bool(flags & abi.RENAME_EXCHANGE)
    old = resolve_parent(ctx, creds, old_start, old_path)
    new = resolve_parent(ctx, creds, new_start, new_path)
    if old.parent.mount is not new.parent.mount:
        raise error(errno.EXDEV)
    if old.is_dots:
        raise error(errno.EBUSY)
    if new.is_dots:
        raise error(errno.EEXIST if flags & abi.RENAME_NOREPLACE else errno.EBUSY)
    old.parent.mount.want_write()

    trap = _trap(old.parent, new.parent)
    source = lookup_child(old.parent, old.name)
    if source is None:
        raise error(errno.ENOENT)
    target = lookup_child(new.parent, new.name)
    if flags & abi.RENAME_NOREPLACE and target is not None:
        raise error(errno.EEXIST)
    if exchange:
        if target is None:
            raise error(errno.ENOENT)
        if not target.inode.is_dir and new.trailing_slash:
            raise error(errno.ENOTDIR)
    # A trailing '/' is allowed only after a directory being moved.
    if not source.inode.is_dir and (old.trailing_slash or (not exchange and new.trailing_slash)):
        raise error(errno.ENOTDIR)
    if source is trap:
        raise error(errno.EINVAL)  # a directory into its own subtree
    if target is not None and target is trap:
        raise error(errno.EINVAL if exchange else errno.ENOTEMPTY)  # over its own ancestor

    _vfs_rename(creds, old.parent, source, new.parent, new.name, target, flags)


def _vfs_rename(creds, old_dir: Dentry, source: Dentry, new_dir: Dentry, new_name: bytes,
                target: Dentry | None, flags: int) -> None:
    exchange = bool(flags & abi.RENAME_EXCHANGE)
    if target is not None and source.inode is target.inode:
        return  # two names of one file: POSIX says do nothing, and succeed
    is_dir = source.inode.is_dir
    may_delete(creds, old_dir.inode, source, is_dir)
    if target is None:
        may_create(creds, new_dir.inode)
    else:
        may_delete(creds, new_dir.inode, target, target.inode.is_dir if exchange else is_dir)
    # Moving a directory to another parent rewrites its '..': that needs write access to it.
    if new_dir is not old_dir:
        if is_dir:
            permission(creds, source.inode, MAY_WRITE)
        if exchange and target.inode.is_dir:
            permission(creds, target.inode, MAY_WRITE)
    table = source.mount.table
    if table.is_mountpoint(source) or (target is not None and table.is_mountpoint(target)):
        raise error(errno.EBUSY)
    old_dir.inode.rename(source.name, new_dir.inode, new_name, flags)
    if target is not None and not exchange and target.inode.is_dir:
        target.inode.dead = True
    if exchange:
        source.d_exchange(target)
    else:
        source.d_move(new_dir, new_name)


def _trap(old_dir: Dentry, new_dir: Dentry) -> Dentry | None:
    """Linux's lock_rename: when one parent is an ancestor of the other, the child of the
    ancestor that leads to the other. The source being it means moving a directory into
    itself; the target being it means replacing an ancestor of the source."""
    if old_dir is new_dir:
        return None
    for ancestor, descendant in ((old_dir, new_dir), (new_dir, old_dir)):
        d = descendant
        while d.parent is not None:
            if d.parent is ancestor:
                return d
            d = d.parent
    return None
