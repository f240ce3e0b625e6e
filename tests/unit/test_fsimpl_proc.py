"""/proc generated from the Sentry's state, driven through a fake ProcView.

The tree, its contents and its descriptors (sealed memfds), the links whose target depends
on who asks, magic links, tasks coming and going, and the read-only answers. Where Linux's
own /proc shows the same thing (modes, errnos, mount line formats, statfs), the host's is
the oracle.
"""

import ctypes
import errno
import fcntl
import gc
import os
import pickle
import stat
import tempfile
import threading

import pytest

from edgevisor import abi
from edgevisor.sentry import vfs
from edgevisor.sentry.fsimpl import proc
from edgevisor.sentry.kernel import sysctl
from edgevisor.sentry.fsimpl.proc import ProcFS, SysFS
from edgevisor.sentry.fsimpl.tmpfs import Tmpfs
from edgevisor.sentry.vfs import Credentials, FSContext, Kind, MountTable

ROOT = Credentials.root()
NOBODY = Credentials(65534, 65534)
F_SEAL_EXEC = 0x20
SEALS = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL
HOST_FILES = ("stat", "statm", "status", "cmdline", "environ", "comm", "maps", "smaps",
              "smaps_rollup", "limits", "auxv", "personality", "sched", "syscall", "numa_maps",
              "wchan", "schedstat", "oom_score", "oom_adj", "oom_score_adj", "loginuid",
              "sessionid", "io", "uid_map", "gid_map", "projid_map", "setgroups",
              "arch_status", "ksm_merging_pages", "ksm_stat")
GROUP_HOST_FILES = ("autogroup", "timens_offsets", "coredump_filter", "timers",
                    "timerslack_ns")
# The kernel's directories that the fake's host_open shows: attr/ with a module's own
# subdirectory, map_files/ with one mapping.
HOST_TREE = ("attr/current", "attr/prev", "attr/apparmor/current", "map_files/1000-2000")
DEV = os.makedev(0, 0xFFE00)
_libc = ctypes.CDLL(None, use_errno=True)


def fails(code, fn, *args, **kw):
    with pytest.raises(OSError) as info:
        fn(*args, **kw)
    assert info.value.errno == code, (errno.errorcode.get(info.value.errno), errno.errorcode[code])


class FakeView:
    """A sandbox with init (1, owned by root) and a process 7 with threads 7, 8 and 9
    (owned by `user`), whose thread 8 is asking. Each per-task file says what it is."""

    hostname = b"sandbox"
    osrelease = b"6.1.0-edgevisor"
    ostype = b"Linux"

    def __init__(self, world: "World", user=(1000, 1000)):
        self.world = world
        self.host_tree = tempfile.TemporaryDirectory()
        for name in HOST_TREE:
            os.makedirs(os.path.dirname(f"{self.host_tree.name}/{name}"), exist_ok=True)
            open(f"{self.host_tree.name}/{name}", "w").close()
        self.threads = {1: [1], 7: [7, 8, 9]}
        self.owners = {1: (0, 0), 7: user}
        self.asker = (7, 8)
        self.ptraceable = {1: user == (0, 0), 7: True}
        home = world.lookup(b"/home")
        self.files = {7: {
            0: (b"pipe:[42]", abi.O_RDONLY),
            1: (world.lookup(b"/home/notes"), abi.O_WRONLY | abi.O_APPEND),
            2: (world.lookup(b"/home/notes"), abi.O_RDWR),
            5: (home, abi.O_RDONLY | abi.O_DIRECTORY),
            6: (world.lookup(b"/etc"), abi.O_PATH),
        }, 1: {}}
        self.cwds = {1: world.table.root.root, 7: home}
        self.exes = {1: world.lookup(b"/sbin/init"), 7: None}
        self.reads: list[tuple[int, str]] = []

    # Who asks, and who lives.

    def current_tgid(self):
        return self.asker[0]

    def current_tid(self):
        return self.asker[1]

    def tgids(self):
        return sorted(self.threads)

    def tids(self, tgid):
        return list(self._group(tgid))

    def tgid_of(self, tid):
        return next((g for g, ts in self.threads.items() if tid in ts), None)

    def owner(self, tid):
        return self.owners[self._tgid(tid)]

    def may_ptrace(self, tgid):
        return tgid == self.asker[0] or self.ptraceable[tgid]

    def exit(self, tid):
        tgid = self._tgid(tid)
        if tid == tgid:
            del self.threads[tgid]
        else:
            self.threads[tgid].remove(tid)

    # What they show.

    def host_read(self, tid, name):
        self._tgid(tid)
        self.reads.append((tid, name))
        return b"%s of %d\n" % (name.encode(), tid)

    def host_open(self, tid, name):
        self._tgid(tid)
        return os.open(f"{self.host_tree.name}/{name}", os.O_RDONLY | os.O_CLOEXEC)

    def net_table(self, tid, name):
        return self.host_read(tid, f"net/{name}")

    def fds(self, tgid):
        return sorted(self._table(tgid))

    def fd_file(self, tgid, fd):
        entry = self._table(tgid).get(fd)
        return None if entry is None else entry[0]

    def fdinfo(self, tgid, fd):
        entry = self._table(tgid).get(fd)
        if entry is None:
            raise OSError(errno.ENOENT, "no such descriptor")
        return b"pos:\t0\nflags:\t0%o\nmnt_id:\t1\nino:\t%d\n" % (entry[1], fd)

    def cwd(self, tgid):
        return self.cwds[self._tgid(tgid)]

    def root(self, tgid):
        self._tgid(tgid)
        return self.world.table.root.root

    def exe(self, tgid):
        return self.exes[self._tgid(tgid)]

    def mounts(self, tgid):
        return b"mounts of %d\n" % self._tgid(tgid)

    def mountinfo(self, tgid):
        return b"mountinfo of %d\n" % self._tgid(tgid)

    def sysctl(self, name):
        fields = {"kernel/hostname": self.hostname, "kernel/osrelease": self.osrelease,
                  "kernel/ostype": self.ostype}
        return fields.get(name, b"sysctl " + name.encode()) + b"\n"

    def sysvipc(self, name):
        return b"sysvipc " + name.encode() + b"\n"

    def cgroup(self, tgid):
        return b"cgroup of %d\n" % self._tgid(tgid)

    def uptime(self):
        return b"12.34 5.67\n"

    def loadavg(self):
        return b"0.00 0.01 0.05 1/4 9\n"

    def meminfo(self):
        return b"MemTotal:        1024 kB\n"

    def cpuinfo(self):
        return b"processor\t: 0\n"

    def stat(self):
        return b"cpu  1 2 3 4\n"

    def version(self):
        return b"Linux version 6.1.0-edgevisor\n"

    def _group(self, tgid):
        if tgid not in self.threads:
            raise OSError(errno.ESRCH, "no such process")
        return self.threads[tgid]

    def _tgid(self, tid):
        tgid = self.tgid_of(tid)
        if tgid is None:
            raise OSError(errno.ESRCH, "no such process")
        return tgid

    def _table(self, tgid):
        self._group(tgid)
        return self.files[tgid]


class World:
    """A tmpfs root with /proc mounted on it, and the fake view behind that /proc."""

    def __init__(self, user=(1000, 1000)):
        self.table = MountTable(Tmpfs(mode=0o755).root)
        self.ctx = FSContext(self.table.root.root)
        for path in (b"/proc", b"/home", b"/etc", b"/sbin"):
            vfs.mkdirat(self.ctx, ROOT, None, path, 0o755)
        for path in (b"/home/notes", b"/sbin/init"):
            vfs.openat(self.ctx, ROOT, None, path, abi.O_CREAT | abi.O_WRONLY, 0o644)
        self.view = FakeView(self, user)
        self.proc = ProcFS(self.view, dev=DEV)
        self.table.mount(self.proc.root, self.lookup(b"/proc"))

    def lookup(self, path, creds=ROOT, follow=False):
        return vfs.lookup(self.ctx, creds, None, path, follow=follow)

    def inode(self, path, creds=ROOT):
        return self.lookup(path, creds).inode

    def names(self, path):
        return [name for name, _ in self.inode(path).readdir()]


@pytest.fixture
def w():
    return World()


def read_all(fd):
    out = b""
    while chunk := os.read(fd, 65536):
        out += chunk
    return out


def opened(inode, flags=abi.O_RDONLY):
    """The content of a new descriptor of `inode`, checking that it is sealed and inert."""
    fd = inode.open_host(flags)
    try:
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0
        assert fcntl.fcntl(fd, fcntl.F_GET_SEALS) & SEALS == SEALS
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        st = os.fstat(fd)
        assert stat.S_IMODE(st.st_mode) & 0o333 == 0  # never writable, never executable
        assert inode.host_key == (st.st_dev, st.st_ino)
        data = read_all(fd)
        fails(errno.EPERM, os.pwrite, fd, b"x", 0)
        if st.st_size:
            fails(errno.EPERM, os.ftruncate, fd, 0)
        fails(errno.EPERM, os.ftruncate, fd, st.st_size + 1)
        fails(errno.EPERM, fcntl.fcntl, fd, fcntl.F_ADD_SEALS, 0)
        return data
    finally:
        os.close(fd)


# ---- the tree --------------------------------------------------------------------------

TOP = [b"self", b"thread-self", b"cpuinfo", b"filesystems", b"loadavg", b"meminfo", b"stat",
       b"version", b"mounts", b"net", b"sys", b"sysvipc", b"uptime"]
# Linux's order (tgid_base_stuff); a thread's directory has no task/, map_files/,
# autogroup, timens_offsets, mountstats, coredump_filter, timers, timerslack_ns, and has
# children.
PID = [b"task", b"fd", b"map_files", b"fdinfo", b"ns", b"net", b"environ", b"auxv", b"status",
       b"personality", b"limits", b"sched", b"autogroup", b"timens_offsets", b"comm",
       b"syscall", b"cmdline", b"stat", b"statm", b"maps", b"numa_maps", b"mem", b"cwd",
       b"root", b"exe", b"mounts", b"mountinfo", b"mountstats", b"clear_refs", b"smaps",
       b"smaps_rollup", b"pagemap", b"attr", b"wchan", b"stack", b"schedstat", b"cpuset",
       b"cgroup", b"oom_score", b"oom_adj", b"oom_score_adj", b"loginuid", b"sessionid",
       b"coredump_filter", b"io", b"uid_map", b"gid_map", b"projid_map", b"setgroups",
       b"timers", b"timerslack_ns", b"arch_status", b"ksm_merging_pages", b"ksm_stat"]
_GROUP_ONLY = {b"task", b"map_files", b"autogroup", b"timens_offsets", b"mountstats",
               b"coredump_filter", b"timers", b"timerslack_ns"}
TID = [name for name in PID if name not in _GROUP_ONLY]
TID.insert(TID.index(b"arch_status"), b"children")


def test_the_root_lists_the_fixed_entries_then_the_thread_groups(w):
    assert w.names(b"/proc") == TOP + [b"1", b"7"]
    assert w.names(b"/proc/sys") == [b"fs", b"kernel", b"vm"]
    assert w.names(b"/proc/sys/kernel") == sorted(
        [b"cap_last_cap", b"domainname", b"hostname", b"msgmax", b"msgmnb", b"msgmni",
         b"ngroups_max", b"ns_last_pid", b"osrelease", b"ostype", b"overflowgid",
         b"overflowuid", b"pid_max", b"pty", b"random", b"sem", b"shmall", b"shmmax",
         b"shmmni", b"threads-max", b"version"])
    assert w.names(b"/proc/sys/fs") == [b"file-max", b"inotify", b"mqueue", b"nr_open",
                                        b"pipe-max-size"]


def test_a_process_and_its_threads(w):
    assert w.names(b"/proc/7") == PID
    assert w.names(b"/proc/7/task") == [b"7", b"8", b"9"]
    assert w.names(b"/proc/7/task/8") == TID
    assert w.names(b"/proc/7/fd") == [b"0", b"1", b"2", b"5", b"6"]
    assert w.names(b"/proc/7/fdinfo") == [b"0", b"1", b"2", b"5", b"6"]
    assert w.names(b"/proc/7/task/9/fd") == [b"0", b"1", b"2", b"5", b"6"]


def test_every_name_of_the_kernels_task_directories_is_shown(w):
    """The kernel resolves guest paths in the view's procfs after the Sentry checked them
    (a racing thread can swap the path): whatever name this host kernel's task directories
    hold, this /proc must hold too (tests/security/test_continue_races.py)."""
    tid = threading.get_native_id()
    thread = b"/proc/self/task/%d" % tid
    assert set(os.listdir(b"/proc/self")) - set(w.names(b"/proc/7")) == set()
    assert set(os.listdir(thread)) - set(w.names(b"/proc/7/task/8")) == set()


def test_a_thread_is_found_by_its_id_but_not_listed(w):
    """Linux: /proc/<tid> of a thread that is not the leader works, unlisted."""
    assert b"8" not in w.names(b"/proc")
    w.view.reads.clear()
    assert opened(w.inode(b"/proc/8/status")) == b"status of 8\n"
    assert w.names(b"/proc/8/task") == [b"7", b"8", b"9"]
    fails(errno.ENOENT, w.lookup, b"/proc/7/task/1")  # not one of its threads


@pytest.mark.parametrize("name", [b"01", b"+7", b"7 ", b"-7", b"0", b"99", b"x",
                                  b"99999999999999999999"])
def test_only_canonical_live_ids_name_a_process(w, name):
    fails(errno.ENOENT, w.lookup, b"/proc/" + name)


def test_too_long_a_name_is_enametoolong(w):
    fails(errno.ENAMETOOLONG, w.proc.root.lookup, b"x" * 256)


def test_every_file_opens_sealed_with_its_content(w):
    expected = {
        b"/proc/cpuinfo": b"processor\t: 0\n",
        b"/proc/meminfo": b"MemTotal:        1024 kB\n",
        b"/proc/uptime": b"12.34 5.67\n",
        b"/proc/loadavg": b"0.00 0.01 0.05 1/4 9\n",
        b"/proc/stat": b"cpu  1 2 3 4\n",
        b"/proc/version": b"Linux version 6.1.0-edgevisor\n",
        b"/proc/filesystems": b"".join(b"nodev\t%s\n" % f for f in proc.FILESYSTEMS),
    }
    for name in sysctl.names():
        expected[b"/proc/sys/" + name.encode()] = w.view.sysctl(name)
    for name in ("msg", "sem", "shm"):
        expected[b"/proc/sysvipc/" + name.encode()] = w.view.sysvipc(name)
    for pid in (1, 7):
        for tid in w.view.threads[pid]:
            for base, task, group in ((b"/proc/%d" % pid, pid, True),
                                      (b"/proc/%d/task/%d" % (pid, tid), tid, False)):
                names = HOST_FILES + tuple("net/" + n.decode() for n in proc.NET_FILES)
                names += ("attr/current", "attr/prev", "attr/apparmor/current")
                names += GROUP_HOST_FILES if group else ()
                for name in names:
                    expected[b"%s/%s" % (base, name.encode())] = b"%s of %d\n" % (name.encode(), task)
                if not group:
                    expected[base + b"/children"] = b"task/%d/children of %d\n" % (task, task)
                else:
                    expected[base + b"/mountstats"] = (
                        b"device mounts mounted on of with fstype %d\n" % pid)
                expected[base + b"/cpuset"] = b"/\n"
                expected[base + b"/clear_refs"] = errno.EINVAL
                expected[base + b"/stack"] = errno.EACCES
                expected[base + b"/mounts"] = b"mounts of %d\n" % pid
                expected[base + b"/mountinfo"] = b"mountinfo of %d\n" % pid
                expected[base + b"/cgroup"] = b"cgroup of %d\n" % pid
                for fd in w.view.fds(pid):
                    expected[b"%s/fdinfo/%d" % (base, fd)] = w.view.fdinfo(pid, fd)
    w.view.ptraceable[1] = True  # or init's environ and maps are not for us

    seen = {}

    def walk(path, inode):
        if isinstance(inode, proc._MemoryFile):
            return  # the kernel's own file, not generated: tests/security/test_proc_handles.py
        if inode.kind is Kind.REG:
            try:
                seen[path] = opened(inode)
            except OSError as e:  # a file that is there and that no guest reads
                seen[path] = e.errno
                return
            assert inode.read(0, 1 << 20) == seen[path]
            assert inode.read(3, 2) == seen[path][3:5]
        elif inode.is_dir:
            assert opened(inode, abi.O_RDONLY | abi.O_DIRECTORY) == b""
            for name, child in inode.readdir():
                walk(path + b"/" + name, child)

    walk(b"/proc", w.proc.root)
    assert seen == expected


def test_content_is_made_at_each_open(w):
    status = w.inode(b"/proc/7/status")
    w.view.reads.clear()
    opened(status)
    opened(status)
    assert w.view.reads == [(7, "status"), (7, "status")]
    uptime = w.inode(b"/proc/uptime")
    w.view.uptime = lambda: b"99.00 1.00\n"
    assert opened(uptime) == b"99.00 1.00\n"
    w.view.hostname = b"renamed"
    assert opened(w.inode(b"/proc/sys/kernel/hostname")) == b"renamed\n"


def test_large_content_is_written_whole():
    w = World()
    big = bytes(range(256)) * 5000
    w.view.host_read = lambda tid, name: big
    assert opened(w.inode(b"/proc/7/maps")) == big


def test_a_descriptor_never_runs_what_the_guest_wrote_in_it(w):
    """cmdline and environ are the guest's to choose: a "#!" there must not make a script
    that fexecve would run."""
    w.view.host_read = lambda tid, name: b"#!/bin/sh\necho escaped\n"
    fd = w.inode(b"/proc/7/cmdline").open_host(abi.O_RDONLY)
    try:
        if fcntl.fcntl(fd, fcntl.F_GET_SEALS) & F_SEAL_EXEC:  # Linux 6.3+
            fails(errno.EPERM, os.fchmod, fd, 0o755)
        pid = os.fork()
        if pid == 0:
            try:
                os.execve(fd, ["sh"], {})
            except OSError as e:
                os._exit(e.errno)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == errno.EACCES
    finally:
        os.close(fd)


def test_o_path_gives_an_empty_descriptor_without_making_content(w):
    for path in (b"/proc/7/status", b"/proc/self", b"/proc/7/fd/0", b"/proc/7"):
        inode = w.inode(path)
        w.view.reads.clear()
        assert opened(inode, abi.O_PATH) == b""
        assert w.view.reads == []


# ---- self, thread-self and the other plain symlinks ----------------------------------------

def test_self_and_thread_self_point_at_whoever_asks(w):
    self_, thread_self = w.inode(b"/proc/self"), w.inode(b"/proc/thread-self")
    assert self_.readlink() == b"7"
    assert thread_self.readlink() == b"7/task/8"
    w.view.asker = (1, 1)
    assert self_.readlink() == b"1"
    assert thread_self.readlink() == b"1/task/1"
    w.view.asker = (None, None)  # nobody of this pid namespace
    fails(errno.ENOENT, self_.readlink)
    fails(errno.ENOENT, thread_self.readlink)
    assert w.inode(b"/proc/mounts").readlink() == b"self/mounts"
    for inode in (self_, thread_self):
        assert not inode.magic and inode.kind is Kind.LNK


def test_paths_through_self_resolve_in_the_vfs(w):
    assert w.lookup(b"/proc/self/status").inode is w.inode(b"/proc/7/status")
    assert w.lookup(b"/proc/thread-self/comm").inode is w.inode(b"/proc/7/task/8/comm")
    assert w.lookup(b"/proc/mounts", follow=True).inode is w.inode(b"/proc/7/mounts")
    w.view.asker = (1, 1)
    assert w.lookup(b"/proc/self/status").inode is w.inode(b"/proc/1/status")


# ---- magic links ---------------------------------------------------------------------------

def test_magic_links_jump_where_the_process_is(w):
    cwd, root, exe = (w.inode(b"/proc/7/" + n) for n in (b"cwd", b"root", b"exe"))
    assert all(link.magic for link in (cwd, root, exe))
    assert cwd.jump() is w.lookup(b"/home")
    assert cwd.readlink() == b"/home"
    assert root.jump() is w.table.root.root
    assert root.readlink() == b"/"
    fails(errno.ENOENT, exe.jump)  # no executable (a kernel thread's, in Linux)
    fails(errno.ENOENT, exe.readlink)
    init_exe = w.inode(b"/proc/1/exe")
    w.view.ptraceable[1] = True
    assert init_exe.jump() is w.lookup(b"/sbin/init")
    assert init_exe.readlink() == b"/sbin/init"
    assert w.inode(b"/proc/7/task/9/cwd").jump() is w.lookup(b"/home")


def test_fd_links(w):
    fd = {n: w.inode(b"/proc/7/fd/%d" % n) for n in w.view.fds(7)}
    assert all(link.magic for link in fd.values())
    assert fd[0].readlink() == b"pipe:[42]"
    fails(errno.ENXIO, fd[0].jump)  # not a file of the VFS: the caller's to handle
    assert fd[1].readlink() == b"/home/notes"
    assert fd[1].jump() is w.lookup(b"/home/notes")
    assert fd[5].jump() is w.lookup(b"/home")
    assert fd[6].readlink() == b"/etc"
    del w.view.files[7][1]  # closed
    fails(errno.ENOENT, fd[1].readlink)
    fails(errno.ENOENT, fd[1].jump)
    fails(errno.ENOENT, w.lookup, b"/proc/7/fd/1")
    fails(errno.ENOENT, w.lookup, b"/proc/7/fdinfo/1")


def test_a_removed_file_shows_as_deleted(w):
    vfs.unlinkat(w.ctx, ROOT, None, b"/home/notes")
    link = w.inode(b"/proc/7/fd/2")
    assert link.readlink() == b"/home/notes (deleted)"
    assert link.jump().dead


def test_links_are_shown_from_the_askers_root(w):
    w.view.root = lambda tgid: w.lookup(b"/home") if tgid == 7 else w.table.root.root
    w.view.cwds[7] = w.lookup(b"/home")
    assert w.inode(b"/proc/7/fd/1").readlink() == b"/notes"
    assert w.inode(b"/proc/7/cwd").readlink() == b"/"
    w.view.asker = (1, 1)
    w.view.ptraceable[7] = True
    assert w.inode(b"/proc/7/fd/1").readlink() == b"/home/notes"


def test_fd_link_modes_say_how_the_descriptor_is_open(w):
    modes = {n: w.inode(b"/proc/7/fd/%d" % n).mode for n in w.view.fds(7)}
    assert modes == {0: 0o500, 1: 0o300, 2: 0o700, 5: 0o500, 6: 0}
    assert w.inode(b"/proc/7/fd/2").size == 64  # as Linux


def test_what_needs_ptrace_access_refuses_others(w):
    """Linux's ptrace_may_access(PTRACE_MODE_READ) on magic links, environ, maps, fd/ and
    fdinfo/: mode bits alone would let anyone read init's cwd."""
    assert not w.view.may_ptrace(1)
    for name in (b"cwd", b"root", b"exe"):
        link = w.inode(b"/proc/1/" + name)
        fails(errno.EACCES, link.readlink)
        fails(errno.EACCES, link.jump)
    for name in (b"environ", b"maps"):
        fails(errno.EACCES, w.inode(b"/proc/1/" + name).open_host, abi.O_RDONLY)
        fails(errno.EACCES, w.inode(b"/proc/1/task/1/" + name).read, 0, 10)
    for name in (b"fd", b"fdinfo"):
        fails(errno.EACCES, w.inode(b"/proc/1/" + name).readdir)
        fails(errno.EACCES, w.inode(b"/proc/1/" + name).lookup, b"0")
    for name in (b"status", b"stat", b"cmdline", b"comm", b"limits", b"mounts"):
        opened(w.inode(b"/proc/1/" + name))  # for all to read


# ---- tasks come and go ---------------------------------------------------------------------

def test_a_thread_that_exits_disappears(w):
    task, thread = w.inode(b"/proc/7/task"), w.inode(b"/proc/7/task/9")
    status = w.inode(b"/proc/7/task/9/status")
    w.view.exit(9)
    assert w.names(b"/proc/7/task") == [b"7", b"8"]
    fails(errno.ENOENT, task.lookup, b"9")
    fails(errno.ENOENT, thread.readdir)
    fails(errno.ENOENT, thread.lookup, b"status")
    fails(errno.ESRCH, status.open_host, abi.O_RDONLY)
    assert task.nlink == 4


def test_a_process_that_exits_disappears(w):
    pid = w.lookup(b"/proc/7")
    held = {name: w.inode(b"/proc/7/" + name) for name in (b"status", b"fd", b"cwd", b"task")}
    fd0 = w.inode(b"/proc/7/fd/0")
    nlink = w.proc.root.nlink
    w.view.exit(7)
    assert w.names(b"/proc") == TOP + [b"1"]
    assert w.proc.root.nlink == nlink - 1
    fails(errno.ENOENT, w.lookup, b"/proc/7")
    fails(errno.ENOENT, pid.inode.readdir)
    fails(errno.ENOENT, pid.inode.lookup, b"status")
    fails(errno.ESRCH, held[b"status"].open_host, abi.O_RDONLY)
    fails(errno.ENOENT, held[b"fd"].readdir)
    fails(errno.ENOENT, held[b"task"].readdir)
    fails(errno.ENOENT, held[b"cwd"].jump)
    fails(errno.ENOENT, fd0.readlink)
    assert (held[b"status"].uid, held[b"status"].gid) == (0, 0)
    w.view.asker = (None, None)
    fails(errno.ENOENT, w.lookup, b"/proc/self/status")


def test_a_pid_reused_by_another_process_is_another_directory(w):
    old = w.inode(b"/proc/7")
    w.view.exit(7)
    w.view.threads[9] = [9, 7]  # 7 is now a thread of process 9
    w.view.owners[9] = (0, 0)
    new = w.inode(b"/proc/7")
    assert new is not old and new.ino != old.ino
    assert w.names(b"/proc/7/task") == [b"9", b"7"]


# ---- inode numbers, owners, modes ---------------------------------------------------------

def test_inode_numbers_are_stable_while_the_task_lives(w):
    paths = [b"/proc/7", b"/proc/7/status", b"/proc/7/fd", b"/proc/7/fd/0", b"/proc/7/task/8",
             b"/proc/7/task/8/status", b"/proc/7/task/8/fd/0", b"/proc/7/fdinfo/0",
             b"/proc/1/status", b"/proc/uptime", b"/proc/self"]
    first = {p: w.inode(p).ino for p in paths}
    assert len(set(first.values())) == len(paths)
    gc.collect()  # the inodes are made again, with the same numbers
    again = World()
    assert {p: again.inode(p).ino for p in paths} == first
    assert w.proc.root.ino == 1
    assert all(w.inode(p).dev == DEV for p in paths)


def test_the_same_inode_while_anyone_holds_it(w):
    held = w.lookup(b"/proc/7/status")
    assert w.lookup(b"/proc/7/status") is held
    assert w.proc.root.lookup(b"7") is w.proc.root.lookup(b"7")


def test_owners_follow_the_process(w):
    for path in (b"/proc/7", b"/proc/7/environ", b"/proc/7/fd", b"/proc/7/fd/0",
                 b"/proc/7/task/8", b"/proc/7/task/8/cwd"):
        assert (w.inode(path).uid, w.inode(path).gid) == (1000, 1000)
    status = w.inode(b"/proc/7/status")
    w.view.owners[7] = (0, 0)  # setuid(0), or no longer dumpable
    assert status.uid == 0
    for path in (b"/proc", b"/proc/uptime", b"/proc/self", b"/proc/1/status"):
        assert (w.inode(path).uid, w.inode(path).gid) == (0, 0)


def test_a_processs_directories_are_immutable(w):
    for path in (b"/proc/7", b"/proc/7/task/8"):
        assert w.inode(path).immutable
    for path in (b"/proc", b"/proc/7/fd", b"/proc/7/task", b"/proc/7/status"):
        assert not w.inode(path).immutable


def test_link_counts(w):
    assert w.proc.root.nlink == 2 + 2 + 2  # sys, sysvipc and two processes
    assert w.inode(b"/proc/7").nlink == 9  # task, fd, map_files, fdinfo, ns, net, attr
    assert w.inode(b"/proc/7/task").nlink == 5
    assert w.inode(b"/proc/7/task/8").nlink == 7
    assert w.inode(b"/proc/7/attr").nlink == 3  # apparmor
    assert w.inode(b"/proc/7/fd").nlink == 2
    assert w.inode(b"/proc/sys").nlink == 2 + 3  # fs, kernel, vm
    assert w.inode(b"/proc/7/status").nlink == 1


# What /proc/<pid>/<name> looks like on the host and here.
COMPARED = ["", "status", "stat", "statm", "cmdline", "environ", "comm", "maps", "limits",
            "cgroup", "mounts",
            "mountinfo", "fd", "fdinfo", "task", "cwd", "exe", "root", "fdinfo/0", "fd/0"]


@pytest.mark.parametrize("name", COMPARED)
def test_modes_and_kinds_as_the_hosts(w, name):
    r, wr = os.pipe()  # our process's fd 0 is a pipe's read end: compare with one
    try:
        native = f"/proc/{os.getpid()}/" + (f"fd/{r}" if name == "fd/0" else name)
        host = os.lstat(native)
    finally:
        os.close(r)
        os.close(wr)
    ours = w.inode(b"/proc/7/" + name.encode() if name else b"/proc/7")
    if name == "fdinfo" and stat.S_IMODE(host.st_mode) == 0o500:
        pytest.skip("an older kernel, whose fdinfo/ was dr-x------")
    assert ours.st_mode == host.st_mode
    assert ours.size == host.st_size or stat.S_ISDIR(host.st_mode)


@pytest.mark.parametrize("path", ["", "uptime", "meminfo", "cpuinfo", "loadavg", "filesystems",
                                  "self", "thread-self", "mounts", "sys", "sys/kernel",
                                  "sys/kernel/hostname", "sys/kernel/osrelease",
                                  "sys/kernel/ostype", "sys/kernel/pid_max",
                                  "sys/kernel/ns_last_pid", "sys/kernel/msgmax",
                                  "sys/kernel/sem", "sys/kernel/random/boot_id",
                                  "sys/fs/pipe-max-size", "sys/fs/mqueue/queues_max",
                                  "sys/vm/max_map_count", "sys/kernel/cap_last_cap"])
def test_top_level_modes_as_the_hosts(w, path):
    host = os.lstat(os.path.join("/proc", path))
    ours = w.inode(os.path.join(b"/proc", path.encode()))
    assert ours.st_mode == host.st_mode
    assert (ours.uid, ours.gid) == (0, 0)
    assert ours.size == host.st_size


def test_statfs_as_the_hosts():
    w = World()
    ours = ProcFS(w.view, dev=os.stat("/proc").st_dev).root.statfs()
    host = os.statvfs("/proc")
    assert ours.f_type == proc.PROC_SUPER_MAGIC == 0x9FA0
    assert (ours.f_bsize, ours.f_frsize, ours.f_namelen) == (host.f_bsize, host.f_frsize,
                                                             host.f_namemax)
    assert (ours.f_blocks, ours.f_bfree, ours.f_bavail, ours.f_files, ours.f_ffree) == (
        host.f_blocks, host.f_bfree, host.f_bavail, host.f_files, host.f_ffree)
    assert ours.f_fsid0 | ours.f_fsid1 << 32 == host.f_fsid
    assert w.inode(b"/proc/7/fd/0").statfs().f_type == proc.PROC_SUPER_MAGIC


# ---- read-only -----------------------------------------------------------------------------

def test_opening_for_writing_is_refused(w):
    for path in (b"/proc/uptime", b"/proc/7/status", b"/proc/7/comm", b"/proc/7/fdinfo/0"):
        inode = w.inode(path)
        for flags in (abi.O_WRONLY, abi.O_RDWR, abi.O_WRONLY | abi.O_APPEND):
            fails(errno.EACCES, inode.open_host, flags)
        fails(errno.EACCES, inode.write, 0, b"x")
    # /proc/sys as in a container, whose /proc/sys is mounted read-only
    fails(errno.EROFS, w.inode(b"/proc/sys/kernel/hostname").open_host, abi.O_WRONLY)
    for path in (b"/proc", b"/proc/7", b"/proc/7/fd"):
        fails(errno.EISDIR, w.inode(path).open_host, abi.O_WRONLY)
    for path in (b"/proc/self", b"/proc/7/cwd", b"/proc/7/fd/0"):
        fails(errno.ELOOP, w.inode(path).open_host, abi.O_RDONLY)


def test_truncate_is_accepted_and_changes_nothing(w):
    """As Linux: truncate(2) and O_TRUNC on a proc file succeed, for those who may write."""
    dentry = vfs.openat(w.ctx, ROOT, None, b"/proc/uptime", abi.O_RDONLY | abi.O_TRUNC)
    dentry.inode.truncate(0)
    assert opened(dentry.inode) == b"12.34 5.67\n"


def test_directory_operations_are_refused(w):
    d = w.proc.root
    fails(errno.EACCES, d.create, b"x", Kind.REG, 0o644, 0, 0)
    fails(errno.EPERM, d.create, b"x", Kind.DIR, 0o755, 0, 0)
    fails(errno.EPERM, d.symlink, b"x", b"y", 0, 0)
    fails(errno.EPERM, d.link, b"x", w.inode(b"/proc/uptime"))
    fails(errno.EPERM, d.unlink, b"uptime")
    fails(errno.EPERM, d.rmdir, b"sys")
    fails(errno.EPERM, d.rename, b"uptime", d, b"x")
    fails(errno.ENOTDIR, w.inode(b"/proc/uptime").lookup, b"x")
    fails(errno.EINVAL, w.inode(b"/proc/uptime").readlink)


def _setattr(inode, what):
    if what == "chmod":
        inode.setattr(mode=inode.mode)
    elif what == "chown":
        inode.setattr(uid=inode.uid, gid=inode.gid)
    else:
        inode.setattr(atime=(1, 0), mtime=(1, 0))


@pytest.mark.skipif(os.geteuid() != 0, reason="compares with root's answers on the host")
@pytest.mark.parametrize("what", ["chmod", "chown", "utime"])
@pytest.mark.parametrize("path", ["", "uptime", "self", "mounts", "sys", "sys/kernel",
                                  "sys/kernel/hostname", "PID", "PID/status", "PID/fd",
                                  "PID/fd/0", "PID/fdinfo/0", "PID/task", "PID/task/PID",
                                  "PID/task/PID/comm", "PID/cwd", "PID/environ"])
def test_attribute_changes_as_the_hosts(w, what, path):
    """Each change sets what is there already, so that the host's /proc is left as it is."""
    native = "/proc/" + path.replace("PID", str(os.getpid()))
    st = os.lstat(native)
    try:
        if what == "chmod":
            if stat.S_ISLNK(st.st_mode):
                pytest.skip("Linux has no chmod of a symlink")
            os.chmod(native, stat.S_IMODE(st.st_mode))
        elif what == "chown":
            os.lchown(native, st.st_uid, st.st_gid)
        else:
            os.utime(native, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        expected = None
    except OSError as e:
        expected = e.errno
    inode = w.inode(b"/proc/" + path.replace("PID", "7").encode())
    try:
        _setattr(inode, what)
        got = None
    except OSError as e:
        got = e.errno
    assert got == expected, (errno.errorcode.get(got), errno.errorcode.get(expected))


def test_chmod_and_chown_of_a_top_level_entry_stay_as_in_linux(w):
    uptime = w.inode(b"/proc/uptime")
    uptime.setattr(mode=0o400, uid=5, gid=6, mtime=(100, 5))
    assert (uptime.mode, uptime.uid, uptime.gid, uptime.mtime_ns) == (0o400, 5, 6, 100 * 10**9 + 5)
    status = w.inode(b"/proc/7/status")
    status.setattr(uid=5, gid=6)  # accepted, but a task's entries are always its owner's
    assert (status.uid, status.gid) == (1000, 1000)
    fails(errno.EINVAL, uptime.setattr, atime=(1, 10**9))


def test_by_host_key_maps_descriptors_back(w):
    status, proc_dir = w.inode(b"/proc/7/status"), w.proc.root
    keys = []
    for inode in (status, proc_dir, status):
        fd = inode.open_host(abi.O_RDONLY)
        st = os.fstat(fd)
        os.close(fd)
        keys.append((st.st_dev, st.st_ino))
        assert w.proc.by_host_key(st.st_dev, st.st_ino) is inode
    assert len(set(keys)) == 3  # a new description each time
    assert w.proc.by_host_key(*keys[0]) is status
    st = os.stat("/")
    assert w.proc.by_host_key(st.st_dev, st.st_ino) is None


def test_by_host_key_remembers_a_bounded_number(w, monkeypatch):
    monkeypatch.setattr(proc, "HOST_KEYS_KEPT", 3)
    uptime = w.inode(b"/proc/uptime")
    keys = []
    for _ in range(4):
        fd = uptime.open_host(abi.O_RDONLY)
        keys.append(uptime.host_key)
        os.close(fd)
    assert w.proc.by_host_key(*keys[0]) is None
    assert all(w.proc.by_host_key(*k) is uptime for k in keys[1:])


# ---- through the VFS, against the host's /proc ---------------------------------------------

# (operation, path, second path): run natively on /proc and here on ours, with "self"
# standing for the asking process on both sides.
OPERATIONS = [
    ("mkdir", "/proc/x", None), ("mkdir", "/proc/self/x", None),
    ("mkdir", "/proc/self/fd/x", None), ("mkdir", "/proc/self/task/x", None),
    ("mkdir", "/proc/sys/kernel/x", None), ("mkdir", "/proc/uptime", None),
    ("mkdir", "/proc/self/status", None),
    ("creat", "/proc/x", None), ("creat", "/proc/self/x", None),
    ("creat_excl", "/proc/uptime", None), ("creat", "/proc/uptime", None),
    ("symlink", "/proc/x", None), ("symlink", "/proc/self/x", None),
    ("symlink", "/proc/self/status", None),
    ("link", "/proc/uptime", "/proc/x"), ("link", "/proc/self/status", "/proc/self/x"),
    ("unlink", "/proc/uptime", None), ("unlink", "/proc/self", None),
    ("unlink", "/proc/x", None), ("unlink", "/proc/self/x", None),
    ("unlink", "/proc/self/status", None), ("unlink", "/proc/self/cwd", None),
    ("unlink", "/proc/self/fd/0", None),
    ("rmdir", "/proc/sys", None), ("rmdir", "/proc/PID", None),
    ("rmdir", "/proc/self/fd", None), ("rmdir", "/proc/x", None),
    ("rename", "/proc/uptime", "/proc/x"), ("rename", "/proc/uptime", "/proc/loadavg"),
    ("rename", "/proc/self/status", "/proc/self/x"),
    ("rename", "/proc/self/status", "/proc/self/stat"),
    ("open_read", "/proc/uptime", None), ("open_read", "/proc/self/status", None),
    ("open_read", "/proc/self/environ", None), ("open_write", "/proc/self/fd", None),
    ("readlink", "/proc/uptime", None), ("readlink", "/proc/self", None),
]

# As an ordinary user, Linux answers EPERM before any permission check where a process's
# directory is involved: /proc/<pid> and task/<tid> are S_IMMUTABLE (inode_permission's
# "nobody gets write access to an immutable file"), and a process may always write-search
# its own fd/ (proc_fd_permission). The VFS does not know either rule yet, and answers
# EACCES from the mode bits.
NEEDS_IMMUTABLE = {("unlink", "/proc/self/status", None), ("unlink", "/proc/self/cwd", None),
                   ("unlink", "/proc/self/fd/0", None), ("rmdir", "/proc/self/fd", None),
                   ("rename", "/proc/self/status", "/proc/self/stat")}


def _native(op, path, other):
    path = path.replace("PID", str(os.getpid()))
    if op == "mkdir":
        os.mkdir(path)
    elif op in ("creat", "creat_excl"):
        excl = os.O_EXCL if op == "creat_excl" else 0
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | excl, 0o644))
    elif op == "symlink":
        os.symlink("target", path)
    elif op == "link":
        os.link(path, other)
    elif op == "unlink":
        os.unlink(path)
    elif op == "rmdir":
        os.rmdir(path)
    elif op == "rename":
        os.rename(path, other)
    elif op == "open_read":
        os.close(os.open(path, os.O_RDONLY))
    elif op == "open_write":
        os.close(os.open(path, os.O_WRONLY))
    elif op == "readlink":
        os.readlink(path)


def _ours(w, creds, op, path, other):
    path, other = (p and p.replace("PID", "7").encode() for p in (path, other))
    ctx = w.ctx
    if op == "mkdir":
        vfs.mkdirat(ctx, creds, None, path, 0o755)
    elif op in ("creat", "creat_excl"):
        excl = abi.O_EXCL if op == "creat_excl" else 0
        d = vfs.openat(ctx, creds, None, path, abi.O_CREAT | abi.O_WRONLY | excl, 0o644)
        os.close(d.inode.open_host(abi.O_WRONLY))
    elif op == "symlink":
        vfs.symlinkat(ctx, creds, b"target", None, path)
    elif op == "link":
        vfs.linkat(ctx, creds, None, path, None, other)
    elif op == "unlink":
        vfs.unlinkat(ctx, creds, None, path)
    elif op == "rmdir":
        vfs.rmdirat(ctx, creds, None, path)
    elif op == "rename":
        vfs.renameat2(ctx, creds, None, path, None, other)
    elif op in ("open_read", "open_write"):
        flags = abi.O_RDONLY if op == "open_read" else abi.O_WRONLY
        os.close(vfs.openat(ctx, creds, None, path, flags).inode.open_host(flags))
    elif op == "readlink":
        vfs.lookup(ctx, creds, None, path, follow=False).inode.readlink()


def _outcome(fn, *args):
    try:
        fn(*args)
    except OSError as e:
        return errno.errorcode[e.errno]
    return "ok"


def _natively(ids):
    """Every operation's outcome on the host's /proc, in a child with these ids."""
    r, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            if ids is not None:
                os.setgroups([])
                os.setgid(ids[1])
                os.setuid(ids[0])
                # Changing ids made it undumpable, which gives its /proc entries to root.
                _libc.prctl(abi.PR_SET_DUMPABLE, 1, 0, 0, 0)
            out = {(op, path, other): _outcome(_native, op, path, other)
                   for op, path, other in OPERATIONS}
            os.write(wr, pickle.dumps(out))
        finally:
            os._exit(0)
    os.close(wr)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return pickle.loads(data)


@pytest.fixture(scope="module")
def native():
    if os.geteuid() != 0:
        pytest.skip("compares root and another user on the host")
    return {"root": _natively(None), "nobody": _natively((65534, 65534))}


# Where we differ on purpose: opening a proc file for writing is refused at open, where
# Linux lets root open it and fails the write.
DELIBERATE = {("root", "creat", "/proc/uptime"): ("ok", "EACCES")}


@pytest.mark.parametrize("who", ["root", "nobody"])
@pytest.mark.parametrize("op,path,other", OPERATIONS, ids=lambda v: str(v))
def test_errors_as_the_hosts(request, native, who, op, path, other):
    if who == "nobody" and (op, path, other) in NEEDS_IMMUTABLE:
        request.applymarker(pytest.mark.xfail(
            strict=True, reason="the VFS has no S_IMMUTABLE nor proc_fd_permission"))
    creds, ids = (ROOT, (0, 0)) if who == "root" else (NOBODY, (65534, 65534))
    w = World(user=ids)  # the asking process is the user's, as the native child is
    expected = native[who][(op, path, other)]
    ours = _outcome(_ours, w, creds, op, path, other)
    if (who, op, path) in DELIBERATE:
        assert (expected, ours) == DELIBERATE[who, op, path]
    else:
        assert ours == expected


# ---- formats --------------------------------------------------------------------------------

def _unmangle(field: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(field):
        if field[i:i + 1] == b"\\" and field[i + 1:i + 4].isdigit():
            out.append(int(field[i + 1:i + 4], 8))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return bytes(out)


def test_mount_lines_as_the_hosts():
    with open("/proc/self/mounts", "rb") as f:
        lines = f.read().splitlines(keepends=True)
    assert lines
    for line in lines:
        source, target, fstype, options, _, _ = line.split(b" ")
        assert proc.mounts_line(_unmangle(source), _unmangle(target), _unmangle(fstype),
                                options) == line
    assert proc.mounts_line(b"a b", b"/x\ty\\z\n", b"tmpfs", b"rw") == (
        b"a\\040b /x\\011y\\134z\\012 tmpfs rw 0 0\n")


def test_mountinfo_lines_as_the_hosts():
    with open("/proc/self/mountinfo", "rb") as f:
        lines = f.read().splitlines(keepends=True)
    for line in lines:
        head, tail = line.rstrip(b"\n").split(b" - ")
        mount_id, parent_id, dev, root, target, options, *optional = head.split(b" ")
        fstype, source, super_options = tail.split(b" ")
        major, minor = dev.split(b":")
        assert proc.mountinfo_line(
            int(mount_id), int(parent_id), os.makedev(int(major), int(minor)),
            _unmangle(root), _unmangle(target), options, optional, _unmangle(fstype),
            _unmangle(source), super_options) == line


def test_host_files_pass_through_byte_for_byte():
    """stat, status ... are the host's own (for the guest's pid namespace): nothing is lost
    on the way, whatever the bytes."""
    host = {}
    for name in HOST_FILES:
        with open(f"/proc/self/{name}", "rb") as f:
            host[name] = f.read()
    w = World()
    w.view.host_read = lambda tid, name: host[name]
    for name in HOST_FILES:
        assert opened(w.inode(b"/proc/7/" + name.encode())) == host[name]
        assert opened(w.inode(b"/proc/7/task/8/" + name.encode())) == host[name]


# ---- /sys --------------------------------------------------------------------------------

@pytest.mark.parametrize("cpus, span", [(1, b"0\n"), (2, b"0-1\n"), (64, b"0-63\n")])
def test_sys_shows_the_cpu_ranges_and_nothing_of_the_host(cpus, span):
    sys_fs = SysFS(dev=os.makedev(0, 99), cpus=cpus)
    cpu = sys_fs.root.lookup(b"devices").lookup(b"system").lookup(b"cpu")
    assert sorted(name for name, _ in cpu.readdir()) == [b"online", b"possible", b"present"]
    for name in (b"online", b"possible", b"present"):
        assert opened(cpu.lookup(name)) == span
    assert sys_fs.root.lookup(b"class").readdir() == []  # no host devices or interfaces
    assert sys_fs.root.statfs().f_type == proc.SYSFS_MAGIC
    fails(errno.EACCES, sys_fs.root.create, b"x", Kind.REG, 0o644, 0, 0)


def test_sysvipc_pids_become_the_guests():
    """The kernel's rows, read by the Sentry, show its pid numbering; the guest sees its own,
    in the same columns and widths (0 for a task outside its namespace, or gone)."""
    from edgevisor.sentry.kernel.sysvipc import guest_pids
    header = b"       key      shmid perms                  size  cpid  lpid nattch   uid\n"
    row = b"         0          3   600                  4096   4012   4013      1     0\n"
    guest = {4012: 2, 4013: 0}
    shown = guest_pids("shm", header + row, guest.__getitem__)
    assert shown == header + (b"         0          3   600                  4096      2"
                              b"      0      1     0\n")
    sem = b"       key      semid perms      nsems   uid\n         0          0   600  1  0\n"
    assert guest_pids("sem", sem, guest.__getitem__) == sem
