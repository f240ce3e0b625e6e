"""One bound for all in-memory file systems of a sandbox (the overlay's upper layer, /tmp, /dev,
/dev/shm): writes spread over all of them stop with ENOSPC at the bound, for their sum; statfs
and df inside tell that bound; the default is the documented one; a bad size is a usage error."""

import os

import pytest

from edgevisor.config import DEFAULT_SCRATCH_SIZE

from ..support import edgevisor

MiB = 1 << 20
TARGETS = ("/tmp/fill", "/var/fill", "/dev/shm/fill", "/dev/fill")  # /var: the overlay

# Round-robin, one MiB at a time, into every target until each has had ENOSPC: what each got,
# and the errno that stopped it.
FILL = """
import errno, os, sys
targets = sys.argv[1:]
fds = {t: os.open(t, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600) for t in targets}
written = dict.fromkeys(targets, 0)
stopped = {}
chunk = b"x" * (1 << 20)
while len(stopped) < len(targets):
    for t in targets:
        if t in stopped:
            continue
        try:
            written[t] += os.write(fds[t], chunk)
        except OSError as e:
            stopped[t] = errno.errorcode[e.errno]
for t in targets:
    print(t, written[t], stopped[t])
"""

STATFS = """
import os
for path in ("/", "/tmp", "/dev", "/dev/shm"):
    s = os.statvfs(path)
    print(path, s.f_blocks * s.f_frsize, s.f_bfree * s.f_frsize)
"""


def _statfs(stdout: str) -> dict[str, tuple[int, int]]:
    return {p: (int(size), int(free)) for p, size, free in (line.split() for line in
                                                           stdout.splitlines())}


def test_writes_everywhere_stop_together_at_the_bound(sandbox):
    r = sandbox("python3", "-c", FILL, *TARGETS, flags=("--scratch-size", "64m"))
    assert r.returncode == 0, r.stderr
    got = {t: (int(n), why) for t, n, why in (line.split() for line in r.stdout.splitlines())}
    assert {why for _, why in got.values()} == {"ENOSPC"}, r.stdout
    assert all(n >= 8 * MiB for n, _ in got.values()), r.stdout  # each had its share
    total = sum(n for n, _ in got.values())
    # The sum, not each: about 64 MiB, less the pages the tree itself holds.
    assert 60 * MiB <= total <= 64 * MiB, r.stdout
    for target in TARGETS:
        assert not os.path.exists(target)  # the host's /var (and the rest) never saw them


def test_statfs_and_df_tell_the_bound(sandbox):
    r = sandbox("sh", "-c", "head -c 10485760 /dev/zero > /tmp/ten && python3 -c '%s' && "
                "df -k / /tmp /dev /dev/shm" % STATFS, flags=("--scratch-size", "64m"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    stats = _statfs("\n".join(lines[:4]))
    # Every mount shows the one bound, and the 10 MiB written to /tmp as used in each.
    assert {size for size, _ in stats.values()} == {64 * MiB}, r.stdout
    assert len({free for _, free in stats.values()}) == 1, r.stdout
    assert next(iter(stats.values()))[1] <= 54 * MiB
    df = [line.split() for line in lines[5:]]
    assert [(row[1], row[5]) for row in df] == [("65536", p) for p in ("/", "/tmp", "/dev",
                                                                        "/dev/shm")], r.stdout
    assert all(int(row[2]) >= 10240 for row in df), r.stdout


def test_the_default_bound_is_the_documented_one(sandbox):
    page = os.sysconf("SC_PAGE_SIZE")
    quarter = os.sysconf("SC_PHYS_PAGES") * page // 4
    r = sandbox("python3", "-c", STATFS)
    assert r.returncode == 0, r.stderr
    expected = min(DEFAULT_SCRATCH_SIZE, quarter)
    assert {size for size, _ in _statfs(r.stdout).values()} == {expected}, r.stdout
    # Never more than --memory (with or without a cgroup to enforce that).
    r = sandbox("python3", "-c", STATFS, flags=("--memory", "96m"))
    assert r.returncode == 0, r.stderr
    assert {size for size, _ in _statfs(r.stdout).values()} == {96 * MiB}, r.stdout


@pytest.mark.parametrize("flags, message", [
    (("--scratch-size", "12q"), "edgevisor: --scratch-size '12q': expected a size such as 512m "
                                "or 2g"),
    (("--scratch-size=-1g",), "edgevisor: --scratch-size '-1g': expected a size such as 512m "
                              "or 2g"),
    (("--scratch-size", "100k"), "edgevisor: --scratch-size 100k: must be at least 1m"),
    (("--scratch-size", "2g", "--memory", "1g"),
     "edgevisor: --scratch-size 2g: must not be more than --memory 1g"),
])
def test_a_bad_size_is_one_line_of_usage_error(flags, message):
    r = edgevisor("do", *flags, "--", "true")
    assert (r.returncode, r.stderr) == (2, message + "\n")
