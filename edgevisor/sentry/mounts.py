"""The guest's mount table, built from the storage boot assembled and the gofer serving it."""

import os

from ..platform.isolation import (
    FILE_VOLUME_ENTRY,
    Storage,
    is_file_volume,
    is_tmpfs,
    shared_with_host,
)
from .fsimpl.gofer import GoferDirectory, GoferFS
from .fsimpl.terminal import HandedTerminal
from .fsimpl.proc import ProcFS, SysFS
from .kernel.fs import FileSystem
from .kernel.procview import SentryProcView
from .vfs import Credentials, FSContext, MountTable, lookup

# Host mounts the guest may change only through the Sentry; the host may change a volume
# behind the guest's back, so its names are looked up afresh each time.
_EXCLUSIVE = ("/", "/tmp", "/dev", "/dev/shm")
_FSTYPES = {"/": b"overlay", "/tmp": b"tmpfs", "/dev": b"tmpfs", "/dev/shm": b"tmpfs"}
_PROC_DEV = os.makedev(0, 22)
_SYS_DEV = os.makedev(0, 23)


def build_file_system(storage: Storage, client, proc_fd: int, guest_proc: int,
                      kernel, *, directfs: bool = False,
                      terminals: list[tuple[bytes, int]] = ()) -> FileSystem:
    """The guest's mount table: the storage mounts through the gofer (mount number i is
    storage.mounts[i]; the one after the last is the guest's own root, where descriptors are
    opened), and /proc and /sys from the Sentry. `proc_fd` is a procfs of the Sentry's pid
    namespace, `guest_proc` one of the guest's. `directfs`: the Sentry opens host files
    itself, beneath the gofer's descriptors (fsimpl/directfs.py). `terminals`: the host ptys
    handed to the guest, each with the name of the guest's devpts it stands at (the Sentry's
    descriptor of it, and the name reserved: fsimpl/terminal.py)."""
    (_, host, read_only), *others = storage.mounts
    root = GoferFS(client, 0, generation=kernel.generation, exclusive=True,
                   host_shared=shared_with_host(host), direct=directfs)
    table = MountTable(root.root, readonly=read_only, nosuid=True, nodev=True)
    fs = FileSystem(table, proc_fd, kernel.generation, view=(client, len(storage.mounts)),
                    direct=directfs)
    fs.kernel = kernel
    fstype = b"overlay" if storage.overlay else b"none"
    fs.mount_names[table.root] = (fstype, fstype if storage.overlay else b"bind")
    fs.host_stat_mounts[table.root] = b"/"
    ctx = FSContext(table.root.root)

    def mount_at(guest: str, fs_root, **flags):
        try:
            at = lookup(ctx, Credentials.root(), None, os.fsencode(guest), follow=False)
        except FileNotFoundError:
            return None  # a read-only rootfs without this directory goes without the mount
        return table.mount(fs_root, at, **flags)

    for number, (guest, host, read_only) in enumerate(others, start=1):
        own = is_tmpfs(host)  # a --tmpfs: the sandbox's, as /tmp is
        gofer_fs = GoferFS(client, number, generation=kernel.generation,
                           exclusive=own or guest in _EXCLUSIVE,
                           host_shared=shared_with_host(host), direct=directfs)
        root = gofer_fs.root
        if is_file_volume(host):  # the guest's mount shows the one file, as a bind of it
            root = root.lookup(FILE_VOLUME_ENTRY.encode())
        mount = mount_at(guest, root, readonly=read_only, nosuid=True, nodev=guest != "/dev")
        if mount is not None:
            fstype = b"tmpfs" if own else _FSTYPES.get(guest, b"bind")
            fs.mount_names[mount] = (fstype if fstype != b"bind" else b"volume", fstype)
            if not is_file_volume(host) and guest != "/dev" and not guest.startswith("/dev/"):
                fs.host_stat_mounts[mount] = os.fsencode(guest)

    _name_terminals(fs, ctx, proc_fd, terminals)

    for guest, synthetic in (
            ("/proc", ProcFS(SentryProcView(kernel, fs, guest_proc, proc_fd), dev=_PROC_DEV)),
            ("/sys", SysFS(dev=_SYS_DEV, cpus=len(os.sched_getaffinity(0))))):
        mount = mount_at(guest, synthetic.root, readonly=guest == "/sys", nosuid=True,
                         nodev=True, noexec=True)
        if mount is not None:
            name = b"sysfs" if guest == "/sys" else b"proc"
            fs.mount_names[mount] = (name, name)
            fs.synthetic.append(synthetic)
    return fs


def _name_terminals(fs: FileSystem, ctx: FSContext, proc_fd: int,
                    terminals: list[tuple[bytes, int]]) -> None:
    """The guest's devpts is looked up afresh every time (its names come and go with its
    ptys), and each handed terminal stands at its reserved name there."""
    try:
        devpts = lookup(ctx, Credentials.root(), None, b"/dev/pts", follow=False)
    except OSError:
        return
    inode = devpts.inode
    if not isinstance(inode, GoferDirectory):
        return
    inode.fs.live_directory(inode, {name: HandedTerminal(fd, proc_fd, inode)
                                    for name, fd in terminals})
    for name, _ in terminals:
        dentry = lookup(ctx, Credentials.root(), None, b"/dev/pts/" + name, follow=False)
        fs.terminals[dentry.inode.host_key] = dentry
