"""Every file permission decision of the VFS, after Linux's fs/namei.c.

The ids checked are the credentials' file system ids; capabilities are flags on them.
"""

import errno
import stat

from .credentials import Credentials
from .errors import error
from .inode import Inode, Kind

# The kernel's MAY_* mask bits (include/linux/fs.h): internal, not ABI.
MAY_EXEC = 0x1
MAY_WRITE = 0x2
MAY_READ = 0x4
MAY_APPEND = 0x8
MAY_ACCESS = 0x10
MAY_OPEN = 0x20
MAY_CHDIR = 0x40

_S_IXUGO = 0o111


def permission(creds: Credentials, inode: Inode, mask: int) -> None:
    """Linux's generic_permission: EACCES unless `creds` may access `inode` for every bit of
    `mask` (MAY_READ / MAY_WRITE / MAY_EXEC)."""
    if _mode_allows(creds, inode, mask & 7):
        return
    if inode.is_dir:
        # Directories: read and search are overridable by DAC_READ_SEARCH, anything by
        # DAC_OVERRIDE.
        if not mask & MAY_WRITE and creds.cap_dac_read_search:
            return
        if creds.cap_dac_override:
            return
        raise error(errno.EACCES)
    mask &= MAY_READ | MAY_WRITE | MAY_EXEC
    if mask == MAY_READ and creds.cap_dac_read_search:
        return
    # DAC_OVERRIDE grants read and write, but exec only of a file someone may execute:
    # root cannot run a file with no x bit at all.
    if (not mask & MAY_EXEC or inode.mode & _S_IXUGO) and creds.cap_dac_override:
        return
    raise error(errno.EACCES)


def _mode_allows(creds: Credentials, inode: Inode, mask: int) -> bool:
    # The owner class applies to the owner even when it grants less than group or other.
    mode = inode.mode
    if inode.uid == creds.uid:
        return not mask & ~(mode >> 6)
    if creds.in_group(inode.gid):
        return not mask & ~(mode >> 3)
    return not mask & ~mode


def owner_or_capable(creds: Credentials, inode: Inode) -> bool:
    """Linux's inode_owner_or_capable."""
    return inode.uid == creds.uid or creds.cap_fowner


def may_create(creds: Credentials, dir: Inode) -> None:
    """May a name be added to `dir` (its absence already established)?"""
    if dir.dead:
        raise error(errno.ENOENT)  # removed while someone still holds it (IS_DEADDIR)
    permission(creds, dir, MAY_WRITE | MAY_EXEC)


def may_delete(creds: Credentials, dir: Inode, victim, isdir: bool) -> None:
    """May the name of dentry `victim` be removed from `dir` (rmdir if `isdir`)? Linux's
    may_delete: write and search on the directory, then the sticky rule, then the kinds."""
    if victim is None:
        raise error(errno.ENOENT)
    permission(creds, dir, MAY_WRITE | MAY_EXEC)
    if sticky_denies(creds, dir, victim.inode):
        raise error(errno.EPERM)
    if isdir:
        if not victim.inode.is_dir:
            raise error(errno.ENOTDIR)
        if victim.is_root:
            raise error(errno.EBUSY)
    elif victim.inode.is_dir:
        raise error(errno.EISDIR)
    if dir.dead:
        raise error(errno.ENOENT)


def sticky_denies(creds: Credentials, dir: Inode, inode: Inode) -> bool:
    """In a sticky directory (/tmp) only the file's owner, the directory's owner or a holder
    of CAP_FOWNER may remove or rename a name."""
    if not dir.mode & stat.S_ISVTX:
        return False
    return not (creds.uid in (inode.uid, dir.uid) or creds.cap_fowner)


def may_follow_link(creds: Credentials, dir: Inode, link: Inode, protected: bool) -> None:
    """fs.protected_symlinks: in a sticky world-writable directory, a trailing symlink is
    followed only by its owner, or when it belongs to the directory's owner. This stops
    another user's planted /tmp symlink from redirecting a privileged open."""
    if not protected or link.uid == creds.uid:
        return
    if dir.mode & (stat.S_ISVTX | stat.S_IWOTH) != stat.S_ISVTX | stat.S_IWOTH:
        return
    if dir.uid == link.uid:
        return
    raise error(errno.EACCES)


def may_create_in_sticky(creds: Credentials, dir: Inode, inode: Inode, *,
                         protected_regular: int, protected_fifos: int) -> None:
    """open(O_CREAT) of a file that already exists in a sticky directory: Linux refuses it
    (EACCES) when neither the caller nor the directory's owner owns the file, so that another
    user cannot pre-create the name a program meant to make. Regular files and fifos are
    protected only under the fs.protected_regular / fs.protected_fifos sysctls (1: in
    world-writable directories, 2: also in group-writable ones); anything else always."""
    if not dir.mode & stat.S_ISVTX:
        return
    if inode.kind is Kind.REG and not protected_regular:
        return
    if inode.kind is Kind.FIFO and not protected_fifos:
        return
    if inode.uid in (dir.uid, creds.uid):
        return
    if dir.mode & stat.S_IWOTH:
        raise error(errno.EACCES)
    if dir.mode & stat.S_IWGRP:
        level = {Kind.REG: protected_regular, Kind.FIFO: protected_fifos}.get(inode.kind, 0)
        if level >= 2:
            raise error(errno.EACCES)


def may_linkat(creds: Credentials, inode: Inode, protected: bool) -> None:
    """fs.protected_hardlinks: a user may hard-link only files they own, or regular files
    they may read and write that do not raise privileges (setuid, setgid-executable)."""
    if not protected or owner_or_capable(creds, inode):
        return
    if _safe_hardlink_source(creds, inode):
        return
    raise error(errno.EPERM)


def _safe_hardlink_source(creds: Credentials, inode: Inode) -> bool:
    if inode.kind is not Kind.REG or inode.mode & stat.S_ISUID:
        return False
    if inode.mode & (stat.S_ISGID | stat.S_IXGRP) == stat.S_ISGID | stat.S_IXGRP:
        return False
    try:
        permission(creds, inode, MAY_READ | MAY_WRITE)
    except OSError:
        return False
    return True


def may_open(creds: Credentials, inode: Inode, acc_mode: int, *, noexec: bool,
             nodev: bool = False) -> None:
    """Linux's may_open: what the kind of file allows, then the permission bits. A device
    node opens only on a mount without `nodev`."""
    kind = inode.kind
    if kind is Kind.LNK:
        raise error(errno.ELOOP)  # O_NOFOLLOW met a symlink
    if kind is Kind.DIR:
        if acc_mode & MAY_WRITE:
            raise error(errno.EISDIR)
        if acc_mode & MAY_EXEC:
            raise error(errno.EACCES)
    elif kind in (Kind.FIFO, Kind.SOCK, Kind.CHR, Kind.BLK):
        if kind in (Kind.CHR, Kind.BLK) and nodev:
            raise error(errno.EACCES)
        if acc_mode & MAY_EXEC:
            raise error(errno.EACCES)
    elif acc_mode & MAY_EXEC and noexec:
        raise error(errno.EACCES)
    permission(creds, inode, acc_mode)


def init_owner(creds: Credentials, dir: Inode, kind: Kind, mode: int) -> tuple[int, int, int]:
    """(mode, uid, gid) of a new file in `dir`: Linux's inode_init_owner and mode_strip_sgid.
    A setgid directory passes on its group, and its setgid bit to subdirectories; a
    setgid-executable file made there by an outsider without CAP_FSETID loses S_ISGID."""
    gid = creds.gid
    if dir.mode & stat.S_ISGID:
        gid = dir.gid
        if kind is Kind.DIR:
            mode |= stat.S_ISGID
        elif (mode & (stat.S_ISGID | stat.S_IXGRP) == stat.S_ISGID | stat.S_IXGRP
              and not creds.in_group(dir.gid) and not creds.cap_fsetid):
            mode &= ~stat.S_ISGID
    return mode, creds.uid, gid


def remove_privs(creds: Credentials, inode: Inode) -> None:
    """Before a write or truncation of a regular file (Linux's file_remove_privs): a writer
    without CAP_FSETID takes away S_ISUID, and S_ISGID where it means setgid (with group
    exec) or where the writer is not in the file's group, so that changed contents never
    run with the old owner's privileges."""
    if inode.kind is not Kind.REG or creds.cap_fsetid:
        return
    mode = inode.mode & ~stat.S_ISUID
    if mode & stat.S_ISGID and (mode & stat.S_IXGRP or not creds.in_group(inode.gid)):
        mode &= ~stat.S_ISGID
    if mode != inode.mode:
        inode.setattr(mode=mode)
