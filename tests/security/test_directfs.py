"""directfs (sentry/fsimpl/directfs.py): the Sentry's own opens of host files, attacked.

The Sentry serves one call at a time, so a guest that makes one of its opens wait stops the
whole sandbox. No guest thread can rename between the Sentry's check of a name and its open
(the rename is the Sentry's too), but whoever else shares a volume can: another sandbox, a
host process. tests/programs/fifo_swap.c swaps a fifo and a regular file on the volume from
the host while a root guest opens the regular file's name for reading; every open must end,
as it does natively. The escape races of test_escape_suite.py and test_fs_escapes.py
(directories swapped for symlinks to "/" and out of a volume, during opens) run in both
modes through EDGEVISOR_TEST_DIRECTFS (tests/support.py).
"""

import contextlib
import os
import stat
import subprocess

ROUNDS = "3000"  # the swapper exchanges the names thousands of times meanwhile


@contextlib.contextmanager
def swapping(programs, directory):
    swapper = subprocess.Popen([programs["fifo_swap"], "swap", str(directory)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert swapper.stdout.readline() == "swapping\n"
        yield
    finally:
        swapper.kill()
        swapper.wait()


def _outcome(stdout: str) -> tuple[int, ...]:
    name, ok, *counts = stdout.split()
    assert (name, ok) == ("fifo_swap:", "ok"), stdout
    return tuple(map(int, counts))


def test_fifo_swap_native(programs, tmp_path):
    with swapping(programs, tmp_path):
        r = subprocess.run([programs["fifo_swap"], "open", str(tmp_path), ROUNDS],
                           capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sum(_outcome(r.stdout)) == int(ROUNDS)


def test_a_fifo_swapped_in_never_stops_the_sentry(sandbox, programs, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    with swapping(programs, vol):
        r = sandbox(programs["fifo_swap"], "open", "/v", ROUNDS, flags=("-v", f"{vol}:/v"),
                    timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    regular, fifo, errors = _outcome(r.stdout)
    assert regular + fifo + errors == int(ROUNDS) and regular > 0
    # The host's volume holds what it held, as it was.
    assert sorted(os.listdir(vol)) == ["x", "y"]
    kinds = sorted(stat.S_IFMT(os.lstat(vol / n).st_mode) for n in ("x", "y"))
    assert kinds == sorted([stat.S_IFREG, stat.S_IFIFO])
    assert all(os.lstat(vol / n).st_size == 0 for n in ("x", "y"))
