"""Escapes from the guest's file system, tried by a real program on both platforms.

The tree, built afresh for each test in a host directory HOST:

    HOST/secret, HOST/marker    "HOST-SECRET", "HOST-PARENT": the host's, never to be read
    HOST/root                   the rootfs: a static fs_escape, busybox, /marker "root",
                                /secret "root-secret", /etc/passwd, mountpoints v and ro
    HOST/vol   -> /v            writable volume: marker "vol", sub/marker "sub", sub/d/, and
                                symlinks that point out in every way (absolute host paths,
                                `..` chains, "/", loops, a 40- and a 41-link chain, a magic link)
    HOST/ro    -> /ro:ro        read-only volume: marker "ro", w "ro-w"

tests/programs/fs_escape.c runs one section of checks and prints `name: ok <content read>` or
`name: ERRNO` per check. Every section except the two about /proc's other processes runs the
same way natively, in a mirror of that tree (a private mount namespace, the same bind mounts,
a tmpfs /tmp and a proc, pivot_root into HOST/root): that run must print exactly what
EXPECTED says, so the expectations are Linux's own answers, and the sandbox must print the same.
Afterwards the host side is checked too: the secret, the read-only volume and the rootfs are
untouched, and no file outside a volume gained a link inside it.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SECRET = "HOST-SECRET\n"
PARENT = "HOST-PARENT\n"
PROGRAMS = Path(__file__).parent.parent / "programs"
BUSYBOX = shutil.which("busybox") or "/bin/busybox"  # the static one: it runs in the mirror
CHAIN = 40  # c0 -> c1 -> ... -> c40 -> chain_end: 41 links from c0, 40 from c1

ANY_ERRNO = "<errno>"

# One block per section: `name: value`, where value may list alternatives with `|`, and
# <errno> is any failure. Alternatives exist only where the guest's capabilities differ from
# the native run's (root with every capability): linkat(AT_EMPTY_PATH) needs
# CAP_DAC_READ_SEARCH, which a container does not have.
EXPECTED_TEXT = {
    "dotdot": """
        root_dotdot: ok root
        root_dotdot_secret: ok root-secret
        dotdot_many: ok root-secret
        chdir_dotdot: ok
        chdir_dotdot_marker: ok root
        chdir_dotdot_up: ok root-secret
        chdir_dotdot_cwd: ok /
        vol_dotdot: ok root
        vol_dotdot2: ok root
        vol_sub_dotdot: ok root-secret
        vol_parent_is_root: ok same
        ro_parent_is_root: ok same
        tmp_parent_is_root: ok same
        ro_dotdot: ok root
        tmp_dotdot: ok root-secret
        chdir_vol_sub: ok
        vol_cwd_dotdot: ok root-secret
        vol_cwd_dotdot_deep: ok root
        vol_cwd_climbed: ok /
        vol_cwd_climbed_marker: ok root
        vol_parent_listing: ok rootfs
    """,
    "symlinks": """
        abs_out: ENOENT
        abs_out_dir: ENOENT
        rel_out: ok root-secret
        rel_deep: ok root-secret
        slash: ok root-secret
        up: ok root
        up_secret: ok root-secret
        loop: ELOOP
        loop_dir: ELOOP
        self_loop: ELOOP
        chain40: ok chain-end
        chain41: ELOOP
        chain41_dir: ELOOP
        nofollow: ELOOP
        proc_root_link: ok root-secret
        g_abs_make: ok
        g_abs: ENOENT
        g_absdir_make: ok
        g_absdir: ENOENT
        g_rel_make: ok
        g_rel: ok root-secret
        g_rel_readlink: ok ../secret
        g_deep_make: ok
        g_deep: ok root-secret
        g_tmp_make: ok
        g_tmp: ok root-secret
        g_tmp_rel_make: ok
        g_tmp_rel: ok root-secret
        g_loop_make: ok
        g_loop: ELOOP
        chdir_up_link: ok
        chdir_up_link_cwd: ok /
        chdir_up_link_secret: ok root-secret
        g_dangling_make: ok
        creat_dangling_abs: ENOENT
        g_dangling_rel_make: ok
        creat_dangling_rel: ok created
        creat_dangling_rel_where: ok rootfs
    """,
    "proc": """
        self_root_readlink: ok /
        self_root_marker: ok root
        self_root_dotdot: ok root-secret
        self_root_vol_dotdot: ok root-secret
        thread_self_root: ok root
        task_root: ok root-secret
        self_exe: ok /bin/fs_escape
        self_exe_open: ok elf
        chdir_vol_sub: ok
        self_cwd_readlink: ok /v/sub
        self_cwd_marker: ok sub
        self_cwd_dotdot: ok root-secret
        fd_readlink: ok /v/sub
        fd_marker: ok sub
        fd_dotdot: ok root-secret
        fd_reopen_ro_rdwr: EROFS
        fd_reopen_opath_wronly: EROFS
        fd_reopen_opath_rdonly: ok ro-w
        fd_reopen_vol_rdwr: ok vol
    """,
    # Every process the guest sees, through its root, cwd and fd links: no host file.
    # (Natively, without a pid namespace, this finds the host's processes and leaks.)
    "proc_scan": """
        proc_scan: ok clean
    """,
    # pid 1 is the Sentry: non-dumpable, and the guest has no CAP_SYS_PTRACE.
    # pid 1 is the guest's own command (init of its pid namespace); the Sentry and the gofer
    # live in the namespace above, where no guest pid reaches. Through its own /proc/1 the
    # guest finds only itself and its root, never the host's secret.
    "sentry": """
        pid1_root_readlink: ok /
        pid1_cwd_readlink: ok /
        pid1_exe_readlink: ok /bin/fs_escape
        pid1_root_list: ok listed
        pid1_cwd_list: ok listed
        pid1_fd_list: ok listed
        pid1_root_host_secret: ENOENT
        pid1_root_etc: ok root-passwd
        pid1_exe: ok elf
        pid1_environ: ok own
        pid1_mem: <errno>
        pid1_fd0: ok |ok
        pid1_fd3: <errno>
        pid1_map_files: <errno>
        pid1_chdir_root: ok
        pid1_chdir_cwd: ok
        pid1_root_opath: ok opened
        pid1_root_openat2: ENOENT
    """,
    "hardlinks": """
        link_passwd_to_vol: EXDEV
        link_passwd_dotdot: EXDEV
        link_secret_to_vol: EXDEV
        link_vol_to_tmp: EXDEV
        link_vol_to_ro: EROFS
        link_ro_to_vol: EXDEV
        link_tmp_to_vol: EXDEV
        link_vol_to_root: EXDEV
        link_follow_out: EXDEV
        link_proc_fd: EXDEV
        link_empty_path: EXDEV|ENOENT
        rename_vol_to_tmp: EXDEV
        rename_vol_to_root: EXDEV
        rename_mountpoint: EBUSY
        rename_over_mountpoint: EXDEV
        link_within_vol: ok
        link_within_vol_nlink: ok 2
        link_symlink_itself: ok
        link_symlink_itself_readlink: ok ../secret
        link_symlink_itself_open: ok root-secret
    """,
    # open(buf, O_RDWR) while another thread flips buf between "/tmp/w" and "/ro/w" (one
    # 8-byte store each): every descriptor must be /tmp/w's (st_dev and st_ino, as fstat tells
    # them, and as stat must tell them too); the same with O_CREAT and "/ro/n"; chdir while buf
    # flips between "/tmp" and "/proc/1/cwd": the cwd is always a directory the Sentry knows,
    # never one the kernel found by reading the path again after the Sentry checked it.
    "race_open": """
        fstat_is_stat: ok same
        open_race: ok clean
        open_race_saw_both: ok yes
        creat_race: ok clean
        creat_race_saw_both: ok yes
        chdir_race: ok clean
        chdir_race_cwd_known: ok yes
        chdir_race_proc_only: ok clean
    """,
    # /v/ra/b moves between /v/ra/b and /v/b while two threads climb `..` from descriptors
    # on b and b/c (and the main thread walks absolute paths through both places); then /v/x
    # swaps between a directory and symlinks to "../.." and to the host's directory while
    # opens go through it.
    "race_rename": """
        rename_race: ok clean
        rename_race_ran: ok yes
        rename_race_cwd: ok clean
        swap_race: ok clean
        swap_race_ran: ok yes
    """,
    "openat2": """
        beneath_inside: ok sub
        beneath_inside_link: ok sub
        beneath_dotdot: EXDEV
        beneath_dotdot_back: EXDEV
        beneath_abs: EXDEV
        beneath_abs_link: EXDEV
        beneath_up_link: EXDEV
        beneath_host_link: EXDEV
        beneath_magic: EXDEV
        in_root_dotdot: ok sub
        in_root_abs: ok sub
        in_root_abs_dotdot: ok sub
        in_root_abs_link: ok sub
        in_root_up_link: ok sub
        in_root_host_link: ENOENT
        in_root_magic: EXDEV
        no_symlinks_mid: ELOOP
        no_symlinks_last: ELOOP
        no_symlinks_plain: ok sub
        no_magiclinks_fd: ELOOP
        magiclinks_fd: ok vol
        no_magiclinks_root: ELOOP
        no_magiclinks_cwd: ELOOP
        no_magiclinks_ordinary: ok root-secret
        no_xdev_into_vol: EXDEV
        no_xdev_dotdot: EXDEV
        no_xdev_inside: ok vol
        bad_resolve: EINVAL
        beneath_and_in_root: EINVAL
        chdir_vol_sub: ok
        in_root_cwd: ok sub
        beneath_cwd: EXDEV
    """,
    "opath": """
        opath_up1: ok vol
        opath_dotdot: ok root
        opath_secret: ok root-secret
        opath_fstatat_root: ok same
        opath_fstatat_many: ok same
        opath_fchdir: ok
        opath_getcwd: ok /v/sub
        opath_rel_marker: ok sub
        opath_rel_secret: ok root-secret
        opath_file_fchdir: ENOTDIR
        opath_file_openat: ENOTDIR
        opath_read: EBADF
        opath_ro_create: EROFS
        opath_ro_rdwr: EROFS
        opath_ro_to_vol_rdwr: ok vol
        opath_ro_mkdir: EROFS
        opath_ro_unlink: EROFS
        opath_symlink_readlink: ok ../secret
        opath_proc_root: ok root-secret
        opath_fchdir_vol: ok
        opath_fchdir_vol_up: ok
        opath_fchdir_vol_up_cwd: ok /
        opath_fchdir_vol_up_marker: ok root
    """,
    # chroot is no boundary for a process whose cwd stays outside it (Linux's rule), but even
    # the classic double-chroot climb ends at the sandbox's root.
    "chroot": """
        chdir_root: ok
        chroot_vol: ok
        chroot_cwd_outside: ok root-secret
        chroot_cwd_outside_up: ok root-secret
        chroot_abs: ok vol
        chroot_abs_dotdot: ok vol
        chroot_chdir: ok
        chroot_cwd: ok /
        chroot_rel_dotdot: ok vol
        chroot_mkdir_jail: ok
        chroot_jail: ok
        chroot_dot: ok
        chroot_double_secret: ok root-secret
        chroot_double_marker: ok root
        chroot_double_host: ENOENT
        chroot_double_dotdot: ok root-secret
    """,
}


def _parse(text: str) -> list[tuple[str, str]]:
    pairs = []
    for line in text.strip().splitlines():
        name, _, value = line.strip().partition(": ")
        pairs.append((name, value))
    return pairs


EXPECTED = {section: _parse(text) for section, text in EXPECTED_TEXT.items()}
SECTIONS = list(EXPECTED)
NATIVE_SECTIONS = [s for s in SECTIONS if s not in ("proc_scan", "sentry")]

# With the host's / as the rootfs there is no /marker or /secret: whatever reached them in
# the busybox root finds nothing (and /secret, or a symlink to it, cannot be linked).
HOST_ROOT_SECTIONS = ("dotdot", "symlinks", "hardlinks", "openat2", "opath")
HOST_ROOT_CHANGES = {"ok root": "ENOENT", "ok root-secret": "ENOENT"}
HOST_ROOT_OVERRIDES = {"link_secret_to_vol": "ENOENT", "link_follow_out": "ENOENT"}


def _matches(expected: str, got: str) -> bool:
    if expected == ANY_ERRNO:
        return got.startswith("E")
    return got in expected.split("|")


def mismatches(expected: list[tuple[str, str]], output: str) -> list[str]:
    """What differs from `expected`, one line each: `name: expected X, got Y`."""
    want = dict(expected)
    problems, seen = [], set()
    for line in output.splitlines():
        name, sep, value = line.partition(": ")
        if not sep or name not in want:
            problems.append(f"unexpected line {line!r}")
            continue
        seen.add(name)
        if not _matches(want[name], value):
            problems.append(f"{name}: expected {want[name]}, got {value}")
    problems += [f"{name}: missing (expected {value})" for name, value in expected
                 if name not in seen]
    return problems


def _expected_for_host_root(section: str) -> list[tuple[str, str]]:
    return [(name, HOST_ROOT_OVERRIDES.get(name, HOST_ROOT_CHANGES.get(value, value)))
            for name, value in EXPECTED[section]]


# --- the tree ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def static_fs_escape(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("fs-escape-static") / "fs_escape"
    src = PROGRAMS / "fs_escape.c"
    subprocess.run(["cc", "-static", "-O2", "-pthread", "-o", str(out), str(src)], check=True)
    return str(out)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def build_volume(host: Path) -> None:
    """HOST/vol, HOST/ro and the secret beside them."""
    vol, ro = host / "vol", host / "ro"
    _write(host / "secret", SECRET)
    _write(host / "marker", PARENT)
    _write(vol / "marker", "vol\n")
    _write(vol / "sub/marker", "sub\n")
    (vol / "sub/d").mkdir()
    _write(vol / "chain_end", "chain-end\n")
    _write(ro / "marker", "ro\n")
    _write(ro / "w", "ro-w\n")
    links = {
        "abs_out": str(host / "secret"), "abs_out_dir": str(host), "rel_out": "../secret",
        "rel_deep": "../../../../../../../../secret", "slash": "/", "up": "../..",
        "loop_a": "loop_b", "loop_b": "loop_a", "self": "self", "proc_root": "/proc/self/root",
        "sub/link_abs": "/marker", "sub/link_up": "../marker", "sub/link_in": "d/../marker",
        "sub/host_abs": str(host / "secret"),
    }
    links.update({f"c{i}": f"c{i + 1}" for i in range(CHAIN)})
    links[f"c{CHAIN}"] = "chain_end"
    for name, target in links.items():
        (vol / name).symlink_to(target)


def build_tree(host: Path, exe: str) -> None:
    build_volume(host)
    root = host / "root"
    for d in ("bin", "etc", "tmp", "proc", "dev", "v", "ro"):
        (root / d).mkdir(parents=True)
    shutil.copy(exe, root / "bin/fs_escape")
    if os.path.exists(BUSYBOX):
        shutil.copy(BUSYBOX, root / "bin/busybox")
    _write(root / "marker", "root\n")
    _write(root / "secret", "root-secret\n")
    _write(root / "etc/passwd", "root-passwd\n")


@pytest.fixture
def tree(tmp_path, static_fs_escape) -> Path:
    host = tmp_path / "host"
    build_tree(host, static_fs_escape)
    return host


def snapshot(top: Path) -> dict[str, tuple]:
    """Every name under `top` with its kind, mode, link count and content or target."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if os.path.islink(p):
                what = os.readlink(p)
            elif os.path.isfile(p):
                what = Path(p).read_bytes()
            else:
                what = None
            found[os.path.relpath(p, top)] = (st.st_mode, st.st_nlink, what)
    return found


def identities(top: Path) -> dict[tuple[int, int], str]:
    ids = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            ids[(st.st_dev, st.st_ino)] = p
    return ids


def assert_host_untouched(host: Path, before: dict, rootfs: bool = True) -> None:
    """The secret and its directory, the read-only volume and (with an overlay) the rootfs
    are as they were; no file from outside the volume has a name inside it."""
    assert (host / "secret").read_text() == SECRET
    assert (host / "marker").read_text() == PARENT
    assert os.lstat(host / "secret").st_nlink == 1
    assert sorted(os.listdir(host)) == sorted(before["listing"])
    assert snapshot(host / "ro") == before["ro"]
    if rootfs:
        assert snapshot(host / "root") == before["root"]
    outside = {(st.st_dev, st.st_ino) for st in map(os.lstat, (host / "secret", host / "marker",
                                                               "/etc/passwd"))}
    if rootfs:
        outside |= set(identities(host / "root"))
    outside |= set(identities(host / "ro"))
    leaked = {p for key, p in identities(host / "vol").items() if key in outside}
    assert not leaked, f"names in the volume for files outside it: {leaked}"


def before_run(host: Path, rootfs: bool = True) -> dict:
    state = {"listing": os.listdir(host), "ro": snapshot(host / "ro")}
    if rootfs:
        state["root"] = snapshot(host / "root")
    return state


def volume_flags(host: Path) -> tuple[str, ...]:
    return ("-v", f"{host / 'vol'}:/v", "-v", f"{host / 'ro'}:/ro:ro")


def report(output: str, problems: list[str], stderr: str) -> str:
    return "\n".join(problems) + f"\n--- stdout\n{output}--- stderr\n{stderr[-3000:]}"


# --- the native mirror -------------------------------------------------------------------

_MIRROR = """
set -e
T=$1; R=$T/root
mount --bind "$R" "$R"
mount --bind "$T/vol" "$R/v"
mount --bind "$T/ro" "$R/ro"
mount -o remount,bind,ro "$R/ro"
mount -t tmpfs tmpfs "$R/tmp"
mount -t proc proc "$R/proc"
mkdir "$R/.pivot"
cd "$R"
pivot_root . .pivot
/bin/busybox umount -l /.pivot
/bin/busybox rmdir /.pivot
exec /bin/fs_escape "$2" "$T"
"""


def run_native(host: Path, section: str) -> subprocess.CompletedProcess:
    """fs_escape in a private mount namespace whose root mirrors the sandbox's mounts."""
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", _MIRROR,
                           "mirror", str(host), section],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="the native mirror needs root (mounts, pivot_root)")
@pytest.mark.parametrize("section", NATIVE_SECTIONS)
def test_expectations_are_linux_behaviour(tree, section):
    if not (tree / "root/bin/busybox").exists():
        pytest.skip("busybox-static is not installed (./run-tests installs it)")
    r = run_native(tree, section)
    assert r.returncode == 0, r.stderr
    problems = mismatches(EXPECTED[section], r.stdout)
    assert not problems, report(r.stdout, problems, r.stderr)


# --- the sandbox -------------------------------------------------------------------------

@pytest.mark.parametrize("section", SECTIONS)
def test_escapes_stay_inside(sandbox, tree, section):
    before = before_run(tree)
    r = sandbox("/bin/fs_escape", section, str(tree), timeout=60,
                flags=("--rootfs", str(tree / "root"), *volume_flags(tree)))
    problems = mismatches(EXPECTED[section], r.stdout)
    if r.returncode != 0:
        problems.insert(0, f"exit status {r.returncode}")
    assert not problems, report(r.stdout, problems, r.stderr)
    assert_host_untouched(tree, before)


@pytest.mark.parametrize("section", HOST_ROOT_SECTIONS)
def test_volume_escapes_with_the_host_root(sandbox, programs, tmp_path, section):
    """The default configuration: the host's / (read-only, with an overlay) as the rootfs and
    the tree's volumes beside the secret, in the host's /tmp, which the guest's own /tmp hides."""
    host = tmp_path / "host"
    build_volume(host)
    before = before_run(host, rootfs=False)
    r = sandbox(programs["fs_escape"], section, str(host), timeout=60, flags=volume_flags(host))
    problems = mismatches(_expected_for_host_root(section), r.stdout)
    if r.returncode != 0:
        problems.insert(0, f"exit status {r.returncode}")
    assert not problems, report(r.stdout, problems, r.stderr)
    assert_host_untouched(host, before, rootfs=False)
    assert not os.path.exists("/created") and not os.path.exists("/stolen")
