"""A task's file system context: Linux's fs_struct."""

from .dentry import Dentry


class FSContext:
    """Where a task's absolute paths start (`root`), where its relative ones start (`cwd`),
    and the umask its new files get. Threads that share it (CLONE_FS) share one object;
    fork gives the child a `copy()`."""

    __slots__ = ("cwd", "root", "umask")

    def __init__(self, root: Dentry, cwd: Dentry | None = None, umask: int = 0o022):
        self.root = root
        self.cwd = root if cwd is None else cwd
        self.umask = umask & 0o777

    def copy(self) -> "FSContext":
        return FSContext(self.root, self.cwd, self.umask)
