"""--tmpfs PATH[:size=N,mode=M]: an in-memory mount of the sandbox's own at PATH, counted in
the one scratch bound (--scratch-size): a sized one is a tmpfs of that size (ENOSPC past it)
whose size the scratch gives up, an unsized one shares the scratch as /tmp does."""

import os

import pytest

from ..support import edgevisor

MiB = 1 << 20
TARGET = "/run/edgevisor-tmpfs-test"  # never made on the host: the overlay holds it

# Fill PATH's file until ENOSPC; print PATH's mode, its statfs size, the root's, its
# /proc/self/mounts type, what the file got and the errno that stopped it.
FILL = """
import errno, os, stat, sys
path = sys.argv[1]
kind = next(line.split()[2] for line in open("/proc/self/mounts") if line.split()[1] == path)
s = os.statvfs(path)
fd = os.open(path + "/fill", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
written = 0
try:
    while True:
        written += os.write(fd, b"x" * 65536)
except OSError as e:
    why = errno.errorcode[e.errno]
root = os.statvfs("/")
print(oct(stat.S_IMODE(os.stat(path).st_mode)), s.f_blocks * s.f_frsize,
      root.f_blocks * root.f_frsize, kind, written, why)
"""


def test_a_sized_tmpfs_stops_at_its_size_and_the_scratch_gives_it_up(sandbox):
    r = sandbox("python3", "-c", FILL, TARGET,
                flags=("--scratch-size", "8m", "--tmpfs", f"{TARGET}:size=2m,mode=700"))
    assert r.returncode == 0, r.stderr
    mode, size, root, kind, written, why = r.stdout.split()
    assert (mode, int(size), kind, why) == ("0o700", 2 * MiB, "tmpfs", "ENOSPC"), r.stdout
    assert int(written) == 2 * MiB, r.stdout
    assert int(root) == 6 * MiB, r.stdout  # the overlay, /tmp, /dev: the bound less 2m
    assert not os.path.exists(TARGET)


def test_an_unsized_tmpfs_shares_the_scratch_bound(sandbox):
    r = sandbox("python3", "-c", FILL, "/data",
                flags=("--scratch-size", "4m", "--tmpfs", "/data"))
    assert r.returncode == 0, r.stderr
    mode, size, root, kind, written, why = r.stdout.split()
    assert (mode, int(size), int(root), kind, why) == ("0o1777", 4 * MiB, 4 * MiB, "tmpfs",
                                                       "ENOSPC"), r.stdout
    assert 3 * MiB <= int(written) <= 4 * MiB, r.stdout
    assert not os.path.exists("/data/fill")


def test_a_tmpfs_under_tmp_and_a_volume_inside_a_tmpfs(sandbox, tmp_path):
    (tmp_path / "seen").write_text("host\n")
    r = sandbox("sh", "-c", "cat /tmp/t/v/seen && echo guest > /tmp/t/own && cat /tmp/t/own",
                flags=("--tmpfs", "/tmp/t", "-v", f"{tmp_path}:/tmp/t/v:ro"))
    assert (r.returncode, r.stdout) == (0, "host\nguest\n"), r.stderr
    assert sorted(os.listdir(tmp_path)) == ["seen"]


@pytest.mark.parametrize("flags, message", [
    (("--tmpfs", "/x:size=2q"), "edgevisor: --tmpfs '/x:size=2q': size '2q': expected a size "
                                "such as 512m or 2g"),
    (("--tmpfs", "/x:mode=999"), "edgevisor: --tmpfs '/x:mode=999': expected "
                                 "PATH[:size=N,mode=M], M in octal"),
    (("--tmpfs", "/x:noexec"), "edgevisor: --tmpfs '/x:noexec': expected PATH[:size=N,mode=M], "
                               "M in octal"),
    (("--tmpfs", "x"), "edgevisor: --tmpfs: 'x' must be an absolute path other than /, /proc "
                       "and /dev"),
    (("--tmpfs", "/x", "--tmpfs", "/x"), "edgevisor: --tmpfs: '/x' is mounted twice"),
    (("--scratch-size", "4m", "--tmpfs", "/x:size=3m", "--tmpfs", "/y:size=1m"),
     "edgevisor: --tmpfs: sizes of 4m leave less than 1m of the scratch's 4m (--scratch-size)"),
])
def test_a_bad_tmpfs_is_one_line_of_usage_error(flags, message):
    r = edgevisor("do", *flags, "--", "true")
    assert (r.returncode, r.stderr) == (2, message + "\n")
