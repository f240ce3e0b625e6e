"""What the Sentry's /proc shows, from the Sentry's state and the kernel's per-task records.

Tasks are the guest's pid namespace's, numbered as the guest numbers them. Per-task records
the kernel keeps exactly (stat, status, maps, descriptors, cwd) are read from a procfs of that
namespace (the guest's own, which the Sentry holds): its ids and the paths in it are already
the guest's (its view mirrors the Sentry's mounts). Mounts are the Sentry's table. That
procfs is mounted subset=pid (it has task directories only), so the host-wide figures
(meminfo, uptime ...) are read from the Sentry's own procfs.
"""

import errno
import os
import uuid

from ..fsimpl.proc import mountinfo_line, mounts_line
from ..net.policy import GUEST_NET_TABLES
from . import procfs, sysctl
from .sysvipc import guest_pids
from ..vfs import d_path


class SentryProcView:
    def __init__(self, kernel, fs, guest_proc: int, host_proc: int):
        self.kernel = kernel
        self.fs = fs
        self.proc = guest_proc  # a procfs of the guest's pid namespace, task directories only
        self.host_proc = host_proc  # the Sentry's own, for the host-wide figures
        self.boot_id = str(uuid.uuid4()).encode()  # the sandbox's, not the host's
        k = kernel
        self._sysctl_state = {
            "kernel/hostname": lambda: k.hostname, "kernel/domainname": lambda: k.domainname,
            "kernel/osrelease": lambda: k.release, "kernel/ostype": lambda: k.sysname,
            "kernel/version": lambda: k.version, "kernel/ns_last_pid": self._last_pid,
            "kernel/random/boot_id": lambda: self.boot_id,
            "kernel/random/uuid": lambda: str(uuid.uuid4()).encode(),
        }

    # Tasks --------------------------------------------------------------------------

    def current_tgid(self) -> int | None:
        task = self.kernel.current
        return None if task is None else self.kernel.virtual(task.tgid) or None

    def current_tid(self) -> int | None:
        task = self.kernel.current
        return None if task is None else self.kernel.virtual(task.tid) or None

    def tgids(self) -> list[int]:
        return sorted(int(n) for n in os.listdir(self.proc) if n.isdigit())

    def tids(self, tgid: int) -> list[int]:
        return sorted(int(n) for n in self._listdir(f"{tgid}/task"))

    def tgid_of(self, tid: int) -> int | None:
        try:
            status = self._read(f"{tid}/status")
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith(b"Tgid:"):
                return int(line.split()[1])
        return None

    def owner(self, tid: int) -> tuple[int, int]:
        st = self._stat(f"{tid}")
        return st.st_uid, st.st_gid

    def may_ptrace(self, tgid: int) -> bool:
        return True  # every guest task has the same credentials (issue 4 changes that)

    def host_open(self, tid: int, name: str) -> int:
        return os.open(f"{tid}/{name}", os.O_RDONLY | os.O_CLOEXEC, dir_fd=self.proc)

    def host_read(self, tid: int, name: str) -> bytes:
        return self._read(f"{tid}/{name}")

    def net_table(self, tid: int, name: str) -> bytes:
        if self.kernel.net.shows_own_tables() and name not in GUEST_NET_TABLES:
            return procfs.read(self.host_proc, f"thread-self/net/{name}")
        return self._read(f"{tid}/net/{name}")

    def cgroup(self, tgid: int) -> bytes:
        # As from a cgroup namespace rooted at the sandbox's own cgroups (docker's
        # cgroupns=private): each hierarchy, at "/". The host's paths are not the guest's.
        lines = self._read(f"{tgid}/cgroup").splitlines()
        return b"".join(line.rsplit(b":", 1)[0] + b":/\n" for line in lines)

    # Descriptors and places ------------------------------------------------------------

    def fds(self, tgid: int) -> list[int]:
        return sorted(int(n) for n in self._listdir(f"{tgid}/fd"))

    def fd_file(self, tgid: int, fd: int):
        try:
            st = os.stat(f"{tgid}/fd/{fd}", dir_fd=self.proc)
            link = os.readlink(f"{tgid}/fd/{fd}", dir_fd=self.proc)
        except FileNotFoundError:
            raise OSError(errno.ENOENT, "no such descriptor") from None
        key = (st.st_dev, st.st_ino)
        dentry = self.fs.known(key)
        if dentry is not None:
            return dentry
        if not link.startswith("/"):
            return os.fsencode(link)  # pipe:[..], socket:[..], anon_inode:[..]
        # A file outside the view (one the front end handed, say) is not a file of the VFS,
        # even if its host path names one here: the link shows its name, as Linux does, but
        # it is never reopened (reopen_fd), which the Sentry would do with its own credentials.
        dentry = self.fs.by_host_name(link, key)
        return os.fsencode(link) if dentry is None else dentry

    def reopen_fd(self, tgid: int, fd: int, flags: int) -> int:
        try:
            if os.readlink(f"{tgid}/fd/{fd}", dir_fd=self.proc).startswith("/"):
                # A file outside the view (a handed `< file`): the Sentry reopens it with
                # its own credentials, so only for the access the description already has,
                # never to truncate (cat /dev/stdin works; an upgrade to writing does not).
                had = self._description_flags(tgid, fd) & os.O_ACCMODE
                want = flags & os.O_ACCMODE
                if flags & os.O_TRUNC or (had != os.O_RDWR and want != had):
                    raise OSError(errno.EACCES, "more access than the handed descriptor has")
            return os.open(f"{tgid}/fd/{fd}", flags | os.O_CLOEXEC | os.O_NOCTTY,
                           dir_fd=self.proc)
        except FileNotFoundError:
            raise OSError(errno.ENOENT, "no such descriptor") from None

    def fdinfo(self, tgid: int, fd: int) -> bytes:
        return self._read(f"{tgid}/fdinfo/{fd}")

    def _description_flags(self, tgid: int, fd: int) -> int:
        for line in self.fdinfo(tgid, fd).splitlines():
            if line.startswith(b"flags:"):
                return int(line.split()[1], 8)
        raise OSError(errno.ENOENT, "no such descriptor")

    def cwd(self, tgid: int):
        dentry = self.fs.task_dentry(tgid, "cwd", self.proc)
        if dentry is None:
            raise OSError(errno.ENOENT, "no working directory")
        return dentry

    def root(self, tgid: int):
        return self.fs.root_of(tgid, self.proc)

    def exe(self, tgid: int):
        return self.fs.task_dentry(tgid, "exe", self.proc)

    def namespace(self, tgid: int, name: bytes) -> bytes:
        return os.readlink(f"{tgid}/ns/{name.decode()}", dir_fd=self.proc).encode()

    def mounts(self, tgid: int) -> bytes:
        root = self.fs.root_of(tgid, self.proc)
        out = []
        for mount in self.fs.table.mounts():
            target, reachable = d_path(_mountpoint(mount), root)
            if reachable:
                source, fstype = self.fs.mount_info(mount)
                out.append(mounts_line(source, target, fstype, _options(mount)))
        return b"".join(out)

    def mountinfo(self, tgid: int) -> bytes:
        root = self.fs.root_of(tgid, self.proc)
        mounts = self.fs.table.mounts()
        ids = {m: 20 + i for i, m in enumerate(mounts)}
        out = []
        for mount in mounts:
            target, reachable = d_path(_mountpoint(mount), root)
            if not reachable:
                continue
            source, fstype = self.fs.mount_info(mount)
            parent = ids.get(mount.parent, ids[mount])
            out.append(mountinfo_line(ids[mount], parent, mount.root.inode.dev, b"/", target,
                                      _options(mount), [], fstype, source,
                                      b"ro" if mount.readonly else b"rw"))
        return b"".join(out)

    # Host figures ---------------------------------------------------------------------

    def uptime(self) -> bytes:
        return self._host_figure("uptime")

    def loadavg(self) -> bytes:
        # Its last field is the pid last allocated in the reader's namespace, which is the
        # Sentry's here: the guest's highest pid stands for it.
        fields = self._host_figure("loadavg").split()
        fields[-1] = b"%d" % max(self.tgids(), default=1)
        return b" ".join(fields) + b"\n"

    def sysctl(self, name: str) -> bytes:
        """/proc/sys/`name`'s content, for a name of sysctl.names()."""
        if name in sysctl.HOST_LIMITS:
            return self._host_figure(f"sys/{name}")
        value = sysctl.IPC_DEFAULTS.get(name)
        return (self._sysctl_state[name]() if value is None else value) + b"\n"

    def sysvipc(self, name: str) -> bytes:
        """/proc/sysvipc/`name` of the guest's ipc namespace, with the guest's pids."""
        fd = self.kernel.sysvipc.get(name)
        if fd is None:
            raise OSError(errno.ENOENT, "no /proc/sysvipc")
        return guest_pids(name, procfs.read_all(fd), self.kernel.virtual)

    def _last_pid(self) -> bytes:
        # The kernel answers for the reader's pid namespace, the Sentry's here: the guest's
        # highest live task id stands for the last one it allocated.
        return b"%d" % max((tid for tgid in self.tgids() for tid in self.tids(tgid)),
                           default=1)

    def meminfo(self) -> bytes:
        return self._host_figure("meminfo")

    def cpuinfo(self) -> bytes:
        return self._host_figure("cpuinfo")

    def stat(self) -> bytes:
        return self._host_figure("stat")

    def version(self) -> bytes:
        k = self.kernel
        return b"%s version %s (edgevisor) %s\n" % (k.sysname, k.release, k.version)

    # -----------------------------------------------------------------------------------

    def _read(self, name: str) -> bytes:
        return procfs.read(self.proc, name)

    def _host_figure(self, name: str) -> bytes:
        return procfs.read(self.host_proc, name)

    def _listdir(self, name: str) -> list[str]:
        return procfs.listdir(self.proc, name)

    def _stat(self, name: str):
        try:
            return os.stat(name, dir_fd=self.proc)
        except FileNotFoundError:
            raise OSError(errno.ESRCH, "task gone") from None


def _mountpoint(mount):
    return mount.root if mount.mountpoint is None else mount.mountpoint


def _options(mount) -> bytes:
    opts = [b"ro" if mount.readonly else b"rw"]
    for flag in ("nosuid", "nodev", "noexec"):
        if getattr(mount, flag):
            opts.append(flag.encode())
    return b",".join(opts)
