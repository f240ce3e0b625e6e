"""Where the command starts and what it is given: the caller's working directory, -w, the
environment flags, --read-only, and a start-up that does not depend on the caller's TMPDIR.

The caller's directory is checked against a native run of the same command there (the
oracle); the flags follow docker run's meaning."""

import os
import subprocess
from pathlib import Path

import pytest

from ..support import edgevisor

HELLO = "print('hello from', __import__('os').getcwd())\n"
CHECKOUT = str(Path(__file__).resolve().parents[2])


def _do(platform, *args, env=None, **kw):
    # Started from other directories: edgevisor is imported from this checkout wherever.
    env = {**(os.environ if env is None else env), "PYTHONPATH": CHECKOUT}
    return edgevisor("do", f"--platform={platform}", *args, env=env, **kw)


def test_start_up_ignores_the_callers_tmpdir(platform, tmp_path):
    for tmpdir in (tmp_path / "tmp", "/nonexistent/tmp"):  # under /tmp, and missing
        os.makedirs(tmp_path / "tmp", exist_ok=True)
        r = _do(platform, "--", "true", env={**os.environ, "TMPDIR": str(tmpdir)})
        assert (r.returncode, r.stderr) == (0, ""), (tmpdir, r.stderr)


def test_a_volume_under_tmp_is_the_working_directory(platform, tmp_path):
    (tmp_path / "hello.py").write_text(HELLO)
    native = subprocess.run(["python3", "hello.py"], cwd=tmp_path, capture_output=True,
                            text=True)
    r = _do(platform, "-v", f"{tmp_path}:{tmp_path}", "--", "sh", "-c",
            "python3 hello.py && echo written > out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == native.stdout
    assert (tmp_path / "out").read_text() == "written\n"  # the volume is the host's directory


def test_the_callers_directory_is_kept_where_the_guest_sees_it(platform):
    native = subprocess.run(["pwd"], cwd="/usr/share", capture_output=True, text=True)
    r = _do(platform, "--", "pwd", cwd="/usr/share")
    assert (r.returncode, r.stdout) == (0, native.stdout), r.stderr


def test_a_directory_the_guest_cannot_see_is_one_line_and_125(platform, tmp_path):
    """Under the host's /tmp, hidden by the sandbox's own: not a silent start in /."""
    r = _do(platform, "--", "pwd", cwd=tmp_path)
    assert r.returncode == 125
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and str(tmp_path) in r.stderr and "-w" in r.stderr


def test_workdir_flag(platform, tmp_path):
    r = _do(platform, "-w", "/etc", "--", "pwd", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, "/etc\n"), r.stderr
    r = _do(platform, "--workdir", str(tmp_path), "-v", f"{tmp_path}:{tmp_path}", "--", "pwd")
    assert (r.returncode, r.stdout) == (0, f"{tmp_path}\n"), r.stderr


def test_a_missing_workdir_is_one_line_and_125(platform):
    r = _do(platform, "-w", "/nonexistent", "--", "pwd")
    assert (r.returncode, r.stdout) == (125, "")
    assert r.stderr.count("\n") == 1 and "/nonexistent" in r.stderr


def test_the_callers_environment_passes_by_default(platform):
    r = _do(platform, "--", "sh", "-c", 'echo "$EDGEVISOR_TEST_VAR"',
            env={**os.environ, "EDGEVISOR_TEST_VAR": "from the caller"})
    assert (r.returncode, r.stdout) == (0, "from the caller\n"), r.stderr


def test_env_flags(platform, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# a comment\nFROM_FILE=1\n\nSPACED=two words\nOVERRIDDEN=file\n"
                        "PASSED\n")
    r = _do(platform, "--clear-env", "--env-file", str(env_file), "-e", "OVERRIDDEN=flag",
            "-e", "EMPTY=", "-e", "PASSED_TOO", "-w", "/", "--", "/usr/bin/env",
            env={**os.environ, "PASSED": "p", "PASSED_TOO": "q", "HIDDEN": "h"})
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == ["EMPTY=", "FROM_FILE=1", "OVERRIDDEN=flag",
                                             "PASSED=p", "PASSED_TOO=q", "SPACED=two words"]


def test_e_adds_to_the_callers_environment(platform):
    r = _do(platform, "-e", "ADDED=a", "--", "sh", "-c", 'echo "$ADDED $KEPT"',
            env={**os.environ, "KEPT": "k"})
    assert (r.returncode, r.stdout) == (0, "a k\n"), r.stderr


@pytest.mark.parametrize("args", [("-e", "=x"), ("-e", "A B=x"), ("--env-file", "/nonexistent"),
                                  ("-w", "relative")])
def test_bad_env_and_workdir_flags_are_one_line(args):
    r = edgevisor("do", *args, "--", "true")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("edgevisor: "), r.stderr


def test_read_only_is_overlay_none(platform):
    r = _do(platform, "--read-only", "--", "sh", "-c",
            "touch /etc/edgevisor-read-only 2>&1; echo x > /tmp/t && cat /tmp/t")
    assert r.returncode == 0, r.stderr
    assert "Read-only file system" in r.stdout and r.stdout.endswith("x\n")
    assert not os.path.exists("/etc/edgevisor-read-only")
