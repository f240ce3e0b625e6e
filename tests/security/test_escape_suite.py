"""The escape suite: one attempt per test, each as a root guest on both platforms, each
asserting that the attempt failed in the guest AND that the host is unchanged
(tests/security/hostcheck.py: the host marker, the host's /dev nodes, the rootfs and the
host's /, the read-only volume, host-wide kernel settings, no set-id file, security xattr,
device node or outside hard link on the writable volume).

The guest runs in a busybox rootfs the test builds (HOST/root), with HOST/vol at /v and
HOST/ro at /ro:ro. tests/programs/escape_calls.c makes one attempt per run and prints
`name: ok [detail]` or `name: ERRNO`; tests/programs/escape_race.c races one file operation
against a directory swapped for symlinks to "/" and to the host's HOST. Each test id names the
attempt, so `pytest --collect-only -q tests/security/test_escape_suite.py` counts them.

Attempts covered elsewhere are not repeated here: tests/security/test_fs_escapes.py (`..`,
symlinks, /proc magic links, hard links and renames out of a volume, openat2, O_PATH, the
double-chroot climb, open and rename races), test_containment.py (mount of a tmpfs, io_uring_setup,
bpf, reboot, unshare(CLONE_NEWUSER), a block device mknod, open_by_handle_at, clone with
CLONE_NEW*, TIOCSTI without a terminal, ptrace of pid 1, host processes), test_net_escapes.py
(socket families, options, the host's loopback and abstract names), test_filter_verdicts.py
(x32 and int 0x80 getpid) and test_gofer_escapes.py (the gofer's own confinement).
"""

import fcntl
import os
import select
import signal
import subprocess
import termios
import tty
from pathlib import Path

import pytest

from ..support import EDGEVISOR
from .hostcheck import HostState, build_host

PROGRAMS = Path(__file__).parent.parent / "programs"
RACE_ROUNDS = 2000  # per operation: thousands of swaps interleave with them
TIMEOUT = 300

# What the guest must be told, per attempt: an errno where the call is refused, or what the
# sandbox legitimately does with its own copy. `a|b` lists the answers that are both safe.
CALLS_TEXT = """
    userfaultfd: EPERM
    perf_event_open: EPERM
    bpf_prog_load: EPERM
    keyctl_describe: EPERM
    add_key: EPERM
    request_key: EPERM
    io_uring_enter: EPERM
    io_uring_register: EPERM
    kexec_load: EPERM
    init_module: EPERM
    finit_module: EPERM
    delete_module: EPERM
    swapon: EPERM
    acct: EPERM
    settimeofday: EPERM
    clock_adjtime: EPERM
    syslog: EPERM
    iopl: EPERM
    ioperm: EPERM
    modify_ldt: EPERM
    fanotify_init: EPERM
    quotactl: EPERM
    name_to_handle_at: EOPNOTSUPP
    open_by_handle_shocker: EPERM
    mount_bind_root: EPERM
    remount_ro_volume_rw: EPERM
    mount_make_shared: EPERM
    umount_proc: EPERM
    open_tree_clone: EPERM
    fsopen_tmpfs: EPERM
    fspick_ro: EPERM
    mount_setattr_ro: EPERM
    pivot_root: EPERM
    unshare_mount: EPERM
    setns_proc_ns: ENXIO|EPERM
    setns_pidfd: EPERM
    clone3_newuser: ENOSYS|EPERM
    chroot_fd_escape: ENOENT
    exe_overwrite_rootfs: EROFS|ETXTBSY
    exe_overwrite_rootfs_overlay: ok|ETXTBSY
    exe_overwrite_ro_volume: EROFS|ETXTBSY
    exe_of_every_process: ok none writable
    leaked_cwd_fchdir: ok clean
    leaked_cwd_proc_fd: ok clean
    proc_mem_ro_volume: ENOENT|EACCES|EPERM|ok file unchanged
    proc_mem_rootfs: ENOENT|EACCES|EPERM|ok file unchanged
    proc_kcore: ENOENT|EACCES|EPERM
    proc_kmsg: ENOENT|EACCES|EPERM
    dev_kmsg: ENOENT|EACCES|EPERM
    sysrq_trigger: ENOENT|EACCES|EPERM|EROFS
    core_pattern: ENOENT|EACCES|EPERM|EROFS
    modprobe_path: ENOENT|EACCES|EPERM|EROFS
    proc_sys_hostname: EROFS|EACCES|EPERM
    uevent_helper: ENOENT|EACCES|EPERM|EROFS
    cgroup_procs: ENOENT|EACCES|EPERM|EROFS
    sethostname: EPERM
    cgroup_release_agent: EPERM
    mknod_dev_mem: EPERM
    mknod_volume_disk: EPERM
    ptrace_traceme: EPERM
    process_vm_writev: EPERM
    pidfd_getfd: EPERM
    kcmp: EPERM
    kill_minus_1: ok own child killed
    signal_scan: ok 0 others
    rlimit_over_hard: EPERM
    socket_module_autoload: ok 0 made
"""
CALLS = dict(line.strip().split(": ", 1) for line in CALLS_TEXT.strip().splitlines())

# The C attempt each test id runs, where the id says more than the attempt's own name, and
# the flags it runs with.
PROGRAM_ATTEMPT = {"exe_overwrite_rootfs_overlay": "exe_overwrite_rootfs"}
FLAGS = {"exe_overwrite_rootfs": ("--overlay", "none")}

# On a pty that is the guest's stdin and controlling terminal, as on a user's terminal.
TERMINAL = {
    "tiocsti_pty": "EPERM",
    "tiocsti_high_bits_pty": "EPERM",  # the kernel reads only an int's low 32 bits
    "tiocsti_dev_tty": "EPERM",
    "tiocsti_dup_pty": "EPERM",
    "tioclinux_pty": "EPERM",
    "tioccons_pty": "EPERM",  # console redirection needs CAP_SYS_ADMIN
}

# Foreign ABIs kill the process before the payload (a mkdir on the volume) runs.
FOREIGN_ABI = {"x32_mkdir": "x32made", "int80_mkdir": "int80made"}

RACE_OPS = ("open", "rename", "mkdir", "unlink", "chmod", "chown", "truncate", "utimensat",
            "link", "symlink",
            # The same race, with S_ISUID|S_ISGID in the mode: on a volume's own file the
            # gofer refuses the bits (finding 2), so no set-id file appears on the host.
            "chmod_setid")


def _matches(expected: str, line: str, name: str) -> bool:
    return any(line == f"{name}: {want}" for want in expected.split("|"))


@pytest.fixture(scope="module")
def escape_programs(tmp_path_factory) -> dict[str, str]:
    """The attempt programs, static: the busybox rootfs has no C library."""
    out = tmp_path_factory.mktemp("escape-static")
    built = {}
    for name in ("escape_calls", "escape_race"):
        exe = out / name
        subprocess.run(["cc", "-static", "-O2", "-pthread", "-o", str(exe),
                        str(PROGRAMS / f"{name}.c")], check=True)
        built[name] = str(exe)
    return built


@pytest.fixture
def host(tmp_path, escape_programs):
    host = build_host(tmp_path / "host", escape_programs)
    return host, HostState.take(host)


def _report(r, problem: str) -> str:
    return f"{problem}\n--- stdout\n{r.stdout}--- stderr\n{r.stderr[-3000:]}"


@pytest.mark.parametrize("attempt", sorted(CALLS))
def test_attempt_fails_and_host_unchanged(sandbox, host, attempt):
    tree, before = host
    name = PROGRAM_ATTEMPT.get(attempt, attempt)
    r = sandbox("/bin/escape_calls", name, str(tree.dir), timeout=TIMEOUT,
                flags=(*tree.flags(), *FLAGS.get(attempt, ())))
    assert r.returncode == 0, _report(r, f"exit status {r.returncode}")
    assert _matches(CALLS[attempt], r.stdout.strip(), name), \
        _report(r, f"expected {name}: {CALLS[attempt]}")
    before.assert_unchanged(tree)


def _run_on_terminal(platform: str, tree, attempt: str):
    """The attempt with a fresh pty as stdin and controlling terminal, in raw mode so that a
    single injected byte is readable at once; returns the run and what the terminal's input
    queue then held."""
    master, slave = os.openpty()
    tty.setraw(slave)

    def take_terminal():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    try:
        r = subprocess.run([*EDGEVISOR, "do", f"--platform={platform}", *tree.flags(), "--",
                            "/bin/escape_calls", attempt, str(tree.dir)],
                           stdin=slave, capture_output=True, text=True, timeout=TIMEOUT,
                           preexec_fn=take_terminal)
        os.set_blocking(slave, False)
        queued = b""
        while select.select([slave], [], [], 0)[0]:
            try:
                queued += os.read(slave, 100)
            except BlockingIOError:
                break
        return r, queued
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize("attempt", sorted(TERMINAL))
def test_terminal_attempt_fails_and_nothing_is_typed(platform, host, attempt):
    tree, before = host
    r, queued = _run_on_terminal(platform, tree, attempt)
    assert r.returncode == 0, _report(r, f"exit status {r.returncode}")
    assert r.stdout.strip() == f"{attempt}: {TERMINAL[attempt]}", _report(r, "wrong answer")
    assert queued == b"", f"the guest typed {queued!r} into its terminal"
    before.assert_unchanged(tree)


@pytest.mark.parametrize("attempt", sorted(FOREIGN_ABI))
def test_foreign_abi_payload_is_killed(sandbox, host, attempt):
    tree, before = host
    r = sandbox("/bin/escape_calls", attempt, str(tree.dir), timeout=TIMEOUT, flags=tree.flags())
    assert r.returncode == 128 + signal.SIGSYS, _report(r, f"exit status {r.returncode}")
    assert r.stdout == "", _report(r, "the foreign syscall returned")
    assert not (tree.vol / FOREIGN_ABI[attempt]).exists()
    before.assert_unchanged(tree)


@pytest.mark.parametrize("op", RACE_OPS)
def test_symlink_swap_race(sandbox, host, op):
    """`op` on /v/race/d/... RACE_ROUNDS times while another thread swaps d for a symlink to
    "/" and for one to the host's own HOST, which holds a `victim` of its own: the host's
    victim, marker and / keep every byte and attribute."""
    tree, before = host
    r = sandbox("/bin/escape_race", op, str(tree.dir), str(RACE_ROUNDS), timeout=TIMEOUT,
                flags=tree.flags())
    assert r.returncode == 0, _report(r, f"exit status {r.returncode}")
    assert r.stdout.strip() == f"{op}: ok raced", _report(r, "the race did not run")
    before.assert_unchanged(tree)


# The default configuration: the host's / (read-only, under an in-memory overlay) as the
# rootfs, the volumes in the host's /tmp beside the marker, which the guest's own /tmp hides.
HOST_ROOT_ATTEMPTS = {
    "chroot_fd_escape": "ENOENT",
    "leaked_cwd_fchdir": "ok clean",
    "leaked_cwd_proc_fd": "ok clean",
    "exe_overwrite_rootfs": "ok|ETXTBSY",  # the overlay's copy of busybox, never the host's
    "proc_mem_rootfs": CALLS["proc_mem_rootfs"],
    "mknod_volume_disk": "EPERM",
    "core_pattern": CALLS["core_pattern"],
    "mount_bind_root": "EPERM",
}


@pytest.mark.parametrize("attempt", sorted(HOST_ROOT_ATTEMPTS))
def test_attempt_with_the_host_root(sandbox, programs, host, attempt):
    tree, before = host
    r = sandbox(programs["escape_calls"], attempt, str(tree.dir), timeout=TIMEOUT,
                flags=("-v", f"{tree.vol}:/v", "-v", f"{tree.ro}:/ro:ro"))
    assert r.returncode == 0, _report(r, f"exit status {r.returncode}")
    assert _matches(HOST_ROOT_ATTEMPTS[attempt], r.stdout.strip(), attempt), \
        _report(r, f"expected {attempt}: {HOST_ROOT_ATTEMPTS[attempt]}")
    before.assert_unchanged(tree)
