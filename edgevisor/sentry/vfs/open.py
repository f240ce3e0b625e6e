"""Opening and looking up by path: open(2)'s walk and checks, chdir(2), and plain lookups.

openat() decides whether an open may happen and performs its effects on the file system
(creating the file, truncating it); the file description is the caller's to make.
"""

import errno

from ... import abi
from .context import FSContext
from .credentials import Credentials
from .dentry import Dentry
from .errors import error
from .inode import Kind
from .namei import create_in
from .permission import (
    MAY_APPEND,
    MAY_CHDIR,
    MAY_EXEC,
    MAY_READ,
    MAY_WRITE,
    may_create_in_sticky,
    may_open,
    permission,
    remove_privs,
)
from .resolve import resolve

_O_PATH_FLAGS = abi.O_DIRECTORY | abi.O_NOFOLLOW | abi.O_PATH | abi.O_CLOEXEC
_ACC_MODE = {abi.O_RDONLY: MAY_READ, abi.O_WRONLY: MAY_WRITE, abi.O_RDWR: MAY_READ | MAY_WRITE,
             abi.O_ACCMODE: MAY_READ | MAY_WRITE}


def lookup(ctx: FSContext, creds: Credentials, start: Dentry | None, path: bytes, *,
           follow: bool = True, must_dir: bool = False, resolve_flags: int = 0) -> Dentry:
    """The dentry `path` names (stat, access, chmod ...): ENOENT if there is none."""
    res = resolve(ctx, creds, start, path, follow_last=follow, must_dir=must_dir,
                  resolve_flags=resolve_flags)
    if res.dentry is None:
        raise error(errno.ENOENT)
    return res.dentry


def chdir(ctx: FSContext, creds: Credentials, start: Dentry | None, path: bytes) -> None:
    dentry = lookup(ctx, creds, start, path, must_dir=True)
    permission(creds, dentry.inode, MAY_EXEC | MAY_CHDIR)
    ctx.cwd = dentry


def openat(ctx: FSContext, creds: Credentials, start: Dentry | None, path: bytes, flags: int,
           mode: int = 0, *, resolve_flags: int = 0, create=None) -> Dentry:
    """open(2) up to the file description: resolves, creates (O_CREAT), checks access and
    truncates (O_TRUNC), and returns the dentry to open. openat2's stricter validation of
    flags and mode is the caller's; O_TMPFILE is not supported (EOPNOTSUPP). `create`, if
    given, makes the file O_CREAT did not find, as namei.create_in's `make`: the caller may
    make it by the very open that gives the description (Linux's atomic_open)."""
    if flags & abi.O_PATH:
        flags &= _O_PATH_FLAGS
    if flags & (abi.O_CREAT | abi.O_DIRECTORY) == abi.O_CREAT | abi.O_DIRECTORY:
        raise error(errno.EINVAL)
    if flags & abi.O_TMPFILE_BIT:
        raise error(errno.EOPNOTSUPP if flags & abi.O_DIRECTORY else errno.EINVAL)
    if resolve_flags & abi.RESOLVE_CACHED and flags & (abi.O_CREAT | abi.O_TRUNC):
        raise error(errno.EAGAIN)
    must_dir = bool(flags & abi.O_DIRECTORY)
    if flags & abi.O_PATH:
        return lookup(ctx, creds, start, path, follow=not flags & abi.O_NOFOLLOW,
                      must_dir=must_dir, resolve_flags=resolve_flags)

    creat = bool(flags & abi.O_CREAT)
    excl = creat and bool(flags & abi.O_EXCL)
    res = resolve(ctx, creds, start, path, follow_last=not (flags & abi.O_NOFOLLOW or excl),
                  must_dir=must_dir, resolve_flags=resolve_flags, create=creat)
    if res.dentry is None:
        if not creat:
            raise error(errno.ENOENT)
        res.parent.mount.want_write()
        return create_in(ctx, creds, res, mode, create)

    dentry, inode, mount = res.dentry, res.dentry.inode, res.dentry.mount
    if creat:
        if excl:
            raise error(errno.EEXIST)
        if inode.is_dir:
            raise error(errno.EISDIR)
        table = mount.table
        may_create_in_sticky(creds, res.parent.inode, inode,
                             protected_regular=table.protected_regular,
                             protected_fifos=table.protected_fifos)
    acc_mode = _ACC_MODE[flags & abi.O_ACCMODE]
    if flags & abi.O_TRUNC:
        acc_mode |= MAY_WRITE
    if flags & abi.O_APPEND:
        acc_mode |= MAY_APPEND
    truncate = bool(flags & abi.O_TRUNC) and inode.kind is Kind.REG
    if truncate:
        mount.want_write()
    may_open(creds, inode, acc_mode, noexec=mount.noexec, nodev=mount.nodev)
    if flags & abi.O_NOATIME and inode.uid != creds.uid and not creds.cap_fowner:
        raise error(errno.EPERM)
    if inode.kind is Kind.SOCK:
        raise error(errno.ENXIO)  # a socket is connected to, never opened
    if flags & abi.O_ACCMODE in (abi.O_WRONLY, abi.O_RDWR) and inode.kind is not Kind.FIFO:
        mount.want_write()
    if truncate:
        remove_privs(creds, inode)
        inode.truncate(0, touch=True)
    return dentry
