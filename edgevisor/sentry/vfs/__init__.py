"""The Sentry's virtual file system: dentries, mounts and path resolution over the inodes
of the file systems in fsimpl/, with Linux's semantics and no I/O of its own.

    table = MountTable(Tmpfs(mode=0o755).root)        # the root mount
    ctx = FSContext(table.root.root)                  # a task's root, cwd and umask
    creds = Credentials.root()
    mkdirat(ctx, creds, None, b"/tmp", 0o1777)
    res = resolve(ctx, creds, None, b"/tmp/x", follow_last=True)   # Resolved(parent, name, None)

Modules: inode (the file system interface), dentry, mount, credentials, context (a task's
FSContext), permission (every access decision), resolve (the path walk), namei (names
added and removed), rename, open (open's checks, chdir, lookup), pathname (dentry → path).
"""

from .context import FSContext
from .credentials import Credentials
from .dentry import Dentry
from .inode import Inode, Kind
from .mount import Mount, MountTable
from .namei import linkat, mkdirat, mknodat, rmdirat, symlinkat, unlinkat
from .open import chdir, lookup, openat
from .pathname import d_path, getcwd, is_beneath
from .permission import MAY_EXEC, MAY_READ, MAY_WRITE, permission, remove_privs
from .rename import renameat2
from .resolve import Resolved, lookup_child, resolve, resolve_parent

__all__ = [
    "MAY_EXEC",
    "MAY_READ",
    "MAY_WRITE",
    "Credentials",
    "Dentry",
    "FSContext",
    "Inode",
    "Kind",
    "Mount",
    "MountTable",
    "Resolved",
    "chdir",
    "d_path",
    "getcwd",
    "is_beneath",
    "linkat",
    "lookup",
    "lookup_child",
    "mkdirat",
    "mknodat",
    "openat",
    "permission",
    "remove_privs",
    "renameat2",
    "resolve",
    "resolve_parent",
    "rmdirat",
    "symlinkat",
    "unlinkat",
]
