"""Dentries: the names through which a mount shows its file system's inodes."""

import weakref

from .inode import Inode


class Dentry:
    """One name in one mount: (name, parent, inode, mount).

    Each mount has its own tree, grown lazily by `child()` from its file system's inodes and
    kept, while anything holds it, so that a name has one identity: a mount sits on it, a cwd
    or a dirfd holds it, and both follow it through renames. The inode stays the truth: a
    cached child is reused only while the file system still has that very inode under that
    name. A mount's root has no parent; a dentry whose name was removed is `dead` (Linux's
    unhashed dentry), which is how a deleted cwd is recognised.

    The VFS operations keep the cache in step with what they change (`d_delete`, `d_move`,
    `d_exchange`); a change made behind their back is still noticed by the next lookup,
    except that a directory moved that way keeps its old parent until looked up again."""

    __slots__ = ("__weakref__", "_children", "dead", "inode", "mount", "name", "parent")

    def __init__(self, name: bytes, parent: "Dentry | None", inode: Inode, mount):
        self.name = name
        self.parent = parent
        self.inode = inode
        self.mount = mount
        self.dead = False
        # Weak: a dentry nobody holds (no cwd, dirfd, mount or cached descendant) can be
        # dropped and made afresh on the next lookup without anyone telling the difference.
        self._children: weakref.WeakValueDictionary[bytes, Dentry] = weakref.WeakValueDictionary()

    def __repr__(self) -> str:
        return f"<Dentry {self.name!r} ino={self.inode.ino}{' dead' if self.dead else ''}>"

    @property
    def is_root(self) -> bool:
        """True for the root of its mount."""
        return self.parent is None

    def child(self, name: bytes) -> "Dentry | None":
        """The dentry for `name` in this directory, or None when there is no such name."""
        inode = self.inode.lookup(name)
        cached = self._children.get(name)
        if cached is not None and cached.inode is inode:
            return cached
        if cached is not None:
            cached.dead = True
            del self._children[name]
        if inode is None:
            return None
        fresh = Dentry(name, self, inode, self.mount)
        self._children[name] = fresh
        self.mount.table.recently_used.append(fresh)
        return fresh

    def instantiate(self, name: bytes, inode: Inode) -> "Dentry":
        """The dentry for `name`, which the file system just made here for `inode` (Linux's
        d_instantiate): taken from the caller rather than looked up again, which for a file
        system behind the gofer would be one more round trip."""
        cached = self._children.get(name)
        if cached is not None and cached.inode is inode:
            return cached
        if cached is not None:
            cached.dead = True
        fresh = Dentry(name, self, inode, self.mount)
        self._children[name] = fresh
        self.mount.table.recently_used.append(fresh)
        return fresh

    def cached_child(self, name: bytes) -> "Dentry | None":
        return self._children.get(name)

    # Cache upkeep after a successful change of the namespace.

    def d_delete(self) -> None:
        """The name is gone (unlink, rmdir, or replaced by a rename)."""
        if self.parent is not None and self.parent._children.get(self.name) is self:
            del self.parent._children[self.name]
        self.dead = True

    def d_move(self, new_parent: "Dentry", new_name: bytes) -> None:
        """The inode moved to new_parent/new_name; whatever was there is gone."""
        if self.parent._children.get(self.name) is self:
            del self.parent._children[self.name]
        victim = new_parent._children.get(new_name)
        if victim is not None and victim is not self:
            victim.d_delete()
        self.parent, self.name = new_parent, new_name
        new_parent._children[new_name] = self

    def d_exchange(self, other: "Dentry") -> None:
        """RENAME_EXCHANGE swapped the inodes of the two names."""
        a_parent, a_name = self.parent, self.name
        b_parent, b_name = other.parent, other.name
        self.parent, self.name = b_parent, b_name
        other.parent, other.name = a_parent, a_name
        b_parent._children[b_name] = self
        a_parent._children[a_name] = other
