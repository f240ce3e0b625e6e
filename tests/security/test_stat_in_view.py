"""Stats and opens for reading answered by the seccomp platform's C loop (in_view,
platform/c/notify.c) are the Sentry's own answers: the same file, or the same error, for any
path from any start, and never once the asking task may no longer search where it could (a
capability dropped, a setuid, a chroot).

The oracle is the Sentry's VFS itself: the same guest run under --strace-syscalls, where
the C loop answers nothing, on the same volume. The ptrace platform runs the same tests
(its answers are always the VFS's)."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..support import EDGEVISOR

GUEST = Path(__file__).with_name("stat_guest.py")
CALLS = ("newfstatat", "newfstatat-nofollow", "statx", "statx-nofollow", "open",
         "open-nofollow", "open-dir", "open-nonblock", "open-write", "open-path", "readlink")
STARTS = ("cwd", "/t", "/t/d", "/tmp/t", "/vol/t", "/proc", "/sys", "/", "/tmp", "/vol", "/dev",
          "/proc/self", "/t/secret")
NAMES = ("t", "d", "f", "sub", "secret", "inner", "rel", "abs", "up", "proc", "sys", "tmp",
         "vol", "dangling", "loop", "dir", "mtab", "exe", ".", "..", "", "etc", "passwd",
         "usr", "bin", "env", "self", "nope", "dev", "null", "kernel", "1", "cwd", "root")
# Fixed cases: every kind of start and end the C loop takes or leaves to Python.
EDGES = [
    ("newfstatat", "cwd", "/usr/bin/env"), ("newfstatat-nofollow", "cwd", "/bin"),
    ("newfstatat", "cwd", "/bin/sh"), ("statx", "cwd", "/bin/sh"),
    ("newfstatat", "cwd", "/"), ("newfstatat", "cwd", "//usr//bin/../bin/./env"),
    ("newfstatat", "cwd", "/../../../etc/passwd"), ("newfstatat", "cwd", "/sys"),
    ("newfstatat", "cwd", "/sys/.."), ("newfstatat", "cwd", "/proc"),
    ("newfstatat", "cwd", "/proc/1/root/etc/passwd"), ("newfstatat", "cwd", "/etc/mtab"),
    ("newfstatat", "cwd", "/tmp"), ("newfstatat", "cwd", "/tmp/"), ("newfstatat", "cwd", "/tmp/.."),
    ("newfstatat", "cwd", "/tmp/t/up/etc/passwd"), ("newfstatat", "cwd", "/vol/.."),
    ("newfstatat", "cwd", "/dev/null"), ("newfstatat", "cwd", "/etc/hostname"),
    ("newfstatat", "cwd", "/t/d/f/"), ("newfstatat", "cwd", "/t/dir"),
    ("newfstatat-nofollow", "cwd", "/t/dir"), ("newfstatat", "cwd", "/t/loop"),
    ("newfstatat", "cwd", "../../../etc/passwd"), ("newfstatat", "cwd", "."),
    ("newfstatat", "cwd", "secret/inner"), ("newfstatat", "/t/d", "../../.."),
    ("newfstatat", "/tmp/t", "../.."), ("newfstatat", "/vol/t", "../../etc"),
    ("newfstatat", "/proc", "self/cwd"), ("newfstatat", "/sys", ".."),
    ("newfstatat", "/t", "abs/rel"), ("newfstatat", "/t", "up/proc"),
    ("statx", "/vol/t", "vol/d/f"), ("statx-nofollow", "/tmp/t", "tmp"),
    ("open", "cwd", "/etc/passwd"), ("open", "cwd", "/usr/bin"), ("open-dir", "cwd", "/usr/bin"),
    ("open-dir", "cwd", "/etc/passwd"), ("open-nofollow", "cwd", "/bin"),
    ("open", "cwd", "/bin/sh"), ("open", "cwd", "/sys"), ("open-dir", "cwd", "/sys"),
    ("open", "cwd", "/proc/self/status"), ("open", "cwd", "/etc/mtab"),
    ("open", "cwd", "/dev/null"), ("open", "cwd", "/tmp/t/d/f"), ("open-dir", "/tmp/t", "d"),
    ("open", "/vol/t", "d/f"), ("open-dir", "/vol/t", "."), ("open", "cwd", "secret/inner"),
    ("open-nonblock", "cwd", "/t/d/f"), ("open-write", "cwd", "/t/d/f"),
    ("open-path", "cwd", "/t/d/f"), ("open", "cwd", "/t/d/f/"), ("open", "cwd", "/t/loop"),
    ("open", "fd:0", "x"),
    ("readlink", "cwd", "/bin"), ("readlink", "cwd", "/usr/bin/env"), ("readlink", "cwd", "/t/up"),
    ("readlink", "cwd", "/proc/self/exe"), ("readlink", "cwd", "/etc/mtab"), ("readlink", "/t", "abs"),
    ("readlink", "cwd", "/sys"), ("readlink", "cwd", "nope"), ("readlink", "cwd", "/t/dir/"),
    ("newfstatat", "cwd", "/sys/kernel"), ("newfstatat", "cwd", "/usr/../sys/kernel"),
    ("newfstatat", "cwd", "/sys/nope"), ("newfstatat", "cwd", "/t/sys/kernel"),
    ("newfstatat", "cwd", "/t/up/sys/kernel"), ("open", "cwd", "/usr/include/nope.h"),
    ("newfstatat", "cwd", "/t/d/f/x"), ("newfstatat", "/tmp/t", "nope/x"),
    ("newfstatat", "/vol/t", "d/f/x"), ("newfstatat", "cwd", "/tmp/nope"),
]


def _guest(sandbox, vol: Path, command: str, flags=(), **kw):
    """stat_guest.py's `tree`, then `command`, in a sandbox with `vol` as its /vol."""
    vol.mkdir(exist_ok=True)
    shutil.copy(GUEST, vol / "guest.py")
    return sandbox("sh", "-c", f"python3 /vol/guest.py tree && python3 /vol/guest.py {command}",
                   flags=("-v", f"{vol}:/vol", *flags), **kw)


def _check(sandbox, vol: Path, specs, flags=(), **kw) -> None:
    """Every spec answered alike with the C loop and by the Sentry's VFS alone (under
    --strace-syscalls, where the C loop answers nothing), on the same volume."""
    vol.mkdir()
    (vol / "specs").write_bytes(b"".join(b"\t".join(s.encode() for s in spec) + b"\n"
                                         for spec in specs))
    answers = []
    for more in ((), ("--strace-syscalls=getpid",)):
        r = _guest(sandbox, vol, "dump /vol/specs", (*flags, *more), **kw)
        assert r.returncode == 0, r.stderr
        answers.append(r.stdout.splitlines())
    fast, vfs = answers
    assert len(fast) == len(vfs) == len(specs)
    differ = [f"{spec}: {a!r} != {b!r}" for spec, a, b in zip(specs, fast, vfs) if a != b]
    assert not differ, "\n".join(differ)
    assert sum(a != "no start" for a in fast) > len(specs) // 2  # most starts opened


def test_fixed_paths_answer_as_the_sentry(sandbox, tmp_path):
    _check(sandbox, tmp_path / "vol", EDGES)


paths = st.builds(
    lambda absolute, names, trailing: ("/" if absolute else "") + "/".join(names)
    + ("/" if trailing else ""),
    st.booleans(), st.lists(st.sampled_from(NAMES), min_size=1, max_size=6), st.booleans())
specs = st.lists(st.tuples(st.sampled_from(CALLS), st.sampled_from(STARTS), paths),
                 min_size=100, max_size=150)


@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(specs=specs)
def test_any_path_answers_as_the_sentry(sandbox, tmp_path_factory, specs):
    _check(sandbox, tmp_path_factory.mktemp("stats") / "vol", [s for s in specs if s[2]])


@pytest.mark.parametrize("how", ["drop", "setuid"])
def test_a_task_that_can_no_longer_search_is_refused(sandbox, tmp_path, how):
    r = _guest(sandbox, tmp_path / "vol", how)
    before, after = r.stdout.split("|")
    assert len(set(before.split())) == 1 and "EACCES" not in before, r.stdout + r.stderr
    assert after.split() == ["EACCES"] * 6, r.stdout + r.stderr


def test_a_chroot_moves_where_paths_start(sandbox, tmp_path):
    r = _guest(sandbox, tmp_path / "vol", "chroot")
    before, *after = [part.split()[0] for part in r.stdout.split("|")]
    f = before  # /t/d/f's host identity
    assert ":" in f, r.stdout + r.stderr
    # /d/f, /t/d/f, ../../../d/f, rel (-> d/f, from /d), abs (-> /t/d), /abs itself, up
    assert after == [f, "ENOENT", f, "ENOENT", "ENOENT", after[5], f], r.stdout + r.stderr
    assert after[5] not in ("ENOENT", f)


def test_a_user_without_capabilities_is_refused_every_time(sandbox):
    r = sandbox("sh", "-c", "for i in 1 2 3 4; do stat -c %i /root/. 2>&1; done",
                flags=("--user", "1000"))
    assert r.stdout.count("Permission denied") == 4, r.stdout + r.stderr


def test_a_handed_directory_is_the_sentrys_to_answer(sandbox, tmp_path):
    """A descriptor of the caller's (--preserve-fds) is no start in the view: a path from
    it is answered as the Sentry answers it, not from the host directory it names."""
    outside = tmp_path / "outside"
    (outside / "d").mkdir(parents=True)
    (outside / "d" / "f").write_text("host")
    fd = os.open(outside, os.O_PATH | os.O_DIRECTORY)
    try:
        specs = [(call, "fd:3", path) for call in CALLS
                 for path in ("d/f", "d", ".", "..", "../..", "d/../d/f")]
        _check(sandbox, tmp_path / "vol", specs, flags=("--preserve-fds", "1"), pass_fds=(3,),
               preexec_fn=lambda: os.dup2(fd, 3))
    finally:
        os.close(fd)


def test_a_strict_mode_thread_is_ended_by_a_stat(sandbox, programs):
    """The C loop answers stats of a thread it trusts; once the thread is in strict mode,
    its stat must end it all the same."""
    r = sandbox(programs["strict_stat"])
    assert "survived" not in r.stdout and r.returncode == 137, (r.returncode, r.stdout, r.stderr)


def test_a_directory_moved_out_of_a_volume_leads_nowhere_above(platform, tmp_path):
    """The host moves a directory out of a volume while the guest's cwd is in it: `..` from
    there never reaches the host directory it now sits in, nor anything beside it (the
    kernel's walk finds it disconnected, ENOENT; the C loop leaves `..` to the Sentry)."""
    vol = tmp_path / "vol"
    (vol / "inside").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret").write_text("host")
    code = ("import os, time\n"
            "os.chdir('/vol/inside')\n"
            "for _ in range(3): os.stat('.')\n"
            "open('/vol/ready', 'w').close()\n"
            "while not os.path.exists('/vol/go'): time.sleep(0.01)\n"
            "for path in ('../secret', '../../elsewhere/secret'):\n"
            "    try:\n"
            "        os.stat(path); print('reached', path)\n"
            "    except OSError as e:\n"
            "        print(e.strerror)\n"
            "    try:\n"
            "        open(path).read(); print('read', path)\n"
            "    except OSError as e:\n"
            "        print(e.strerror)\n")
    p = subprocess.Popen([*EDGEVISOR, "do", f"--platform={platform}",
                          "-v", f"{vol}:/vol", "--", "python3", "-c", code],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (vol / "ready").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.rename(vol / "inside", elsewhere / "inside")
        (vol / "go").touch()
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert "reached" not in out and "read" not in out, out + err
    assert out.count("No such file or directory") == 4, out + err
