"""From dentries back to names: Linux's d_path and is_subdir, across mounts."""

import errno

from .context import FSContext
from .dentry import Dentry
from .errors import error


def _up(dentry: Dentry) -> Dentry | None:
    """One step towards the top of the mount tree: the parent, or for a mount's root the
    mountpoint it covers (None above a table's root, or a detached mount)."""
    if not dentry.is_root:
        return dentry.parent
    return dentry.mount.mountpoint


def is_beneath(dentry: Dentry, ancestor: Dentry) -> bool:
    """True if `dentry` is `ancestor` or lies below it, mounts included."""
    d = dentry
    while d is not None:
        if d is ancestor:
            return True
        d = _up(d)
    return False


def d_path(dentry: Dentry, root: Dentry) -> tuple[bytes, bool]:
    """The absolute name of `dentry` as seen from `root`, and whether root is above it at
    all: if not, the name runs from the top of the mount tree, as Linux's getcwd reports
    it after "(unreachable)"."""
    names = []
    d = dentry
    while d is not root:
        up = _up(d)
        if up is None:
            return b"/" + b"/".join(reversed(names)), False
        if not d.is_root:
            names.append(d.name)
        d = up
    return b"/" + b"/".join(reversed(names)), True


def getcwd(ctx: FSContext) -> bytes:
    """getcwd(2)'s answer: ENOENT once the cwd has been removed."""
    if ctx.cwd.dead:
        raise error(errno.ENOENT)
    path, reachable = d_path(ctx.cwd, ctx.root)
    return path if reachable else b"(unreachable)" + path
