"""Descriptors edgevisor's caller leaves open never reach the guest (issue 10, finding 4).

The caller here is a host shell that opens descriptors 3 and up before running edgevisor, as
`edgevisor do -- prog 3</secret` does. Everything above 2 is closed before the sandbox starts,
but for the N that --preserve-fds names. The guest is a static tests/programs/fd_leak.c in a
rootfs of its own (HOST/root), so the host's secret, directory and binary are outside its view:
a leaked descriptor would be the only way to them. Both platforms.
"""

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from edgevisor.platform.inject import Couriers

from ..support import EDGEVISOR

PROGRAMS = Path(__file__).parent.parent / "programs"
SECRET = "HOST-SECRET"
RAN = "HOST-BINARY-RAN"


@pytest.fixture(scope="module")
def static_programs(tmp_path_factory):
    out = tmp_path_factory.mktemp("fd_leak")
    subprocess.run(["cc", "-O2", "-static", "-o", str(out / "fd_leak"),
                    str(PROGRAMS / "fd_leak.c")], check=True)
    # The host binary outside the view: static, so that it would run in any root.
    src = out / "hostbin.c"
    src.write_text(f'#include <stdio.h>\nint main(void) {{ puts("{RAN}"); return 0; }}\n')
    subprocess.run(["cc", "-O2", "-static", "-o", str(out / "hostbin"), str(src)], check=True)
    return out


@pytest.fixture
def host(tmp_path, static_programs):
    (tmp_path / "secret").write_text(SECRET + "\n")
    shutil.copy(static_programs / "hostbin", tmp_path / "hostbin")
    root = tmp_path / "root"
    for d in ("proc", "dev", "tmp"):
        (root / d).mkdir(parents=True)
    shutil.copy(static_programs / "fd_leak", root / "fd_leak")
    return tmp_path


def started_with(redirects: str, *args):
    """`edgevisor ARGS` started by a shell that first opens `redirects` (3<FILE ...)."""
    script = f"exec {shlex.join([*EDGEVISOR, *args])} {redirects}"
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=120)


def run(platform, host, redirects: str, *args, flags=()):
    return started_with(redirects, "do", f"--platform={platform}", f"--rootfs={host / 'root'}",
                        *flags, "--", "/fd_leak", *args)


def guest_fds(r) -> list[str]:
    """The descriptors fd_leak's `fds` listed, less the ptrace platform's own courier (a
    socket the Sentry plants in the guest to install descriptors, platform/inject.py)."""
    assert r.stdout.startswith("fds:"), r.stdout + r.stderr
    return sorted(n for n in r.stdout.split()[1:] if n != str(Couriers.HIGH))


def host_unchanged(host):
    assert (host / "secret").read_text() == SECRET + "\n"
    assert sorted(p.name for p in host.iterdir()) == ["hostbin", "root", "secret"]


def test_inherited_file_is_not_readable(platform, host):
    secret = shlex.quote(str(host / "secret"))
    r = run(platform, host, f"3<{secret}", "cat", "3")
    assert r.stdout == "cat: EBADF\n", r.stderr
    assert SECRET not in r.stdout + r.stderr
    host_unchanged(host)


def test_cat_of_inherited_descriptor_in_a_shell(platform, host):
    """The issue's own reproduction, on the host's root: sh -c 'cat <&3' 3</secret."""
    secret = shlex.quote(str(host / "secret"))
    r = started_with(f"3<{secret}", "do", f"--platform={platform}", "--",
                     "sh", "-c", "cat <&3")
    assert SECRET not in r.stdout
    assert r.returncode != 0
    host_unchanged(host)


def test_inherited_binary_cannot_be_executed(platform, host):
    binary = shlex.quote(str(host / "hostbin"))
    r = run(platform, host, f"3<{binary}", "exec", "3")
    assert RAN not in r.stdout
    assert r.stdout == "exec: EBADF\n", r.stderr
    host_unchanged(host)


def test_inherited_directory_does_not_lead_out(platform, host):
    directory = shlex.quote(str(host))
    r = run(platform, host, f"3<{directory}", "dir", "3", "secret")
    assert SECRET not in r.stdout
    assert r.stdout.splitlines() == ["openat: EBADF", "fchdir: EBADF", "plant: EBADF"], r.stderr
    host_unchanged(host)


def test_only_standard_descriptors_are_open(platform, host):
    secret, directory = shlex.quote(str(host / "secret")), shlex.quote(str(host))
    r = run(platform, host, f"3<{secret} 4<{directory} 9<{secret}", "fds")
    assert guest_fds(r) == ["0", "1", "2"]


def test_preserve_fds_passes_exactly_the_named_ones(platform, host):
    secret, directory = shlex.quote(str(host / "secret")), shlex.quote(str(host))
    flags = ("--preserve-fds", "1")
    redirects = f"3<{secret} 4<{directory}"
    r = run(platform, host, redirects, "cat", "3", flags=flags)
    assert r.stdout == f"cat: ok {SECRET}\n", r.stderr
    r = run(platform, host, redirects, "fds", flags=flags)
    assert guest_fds(r) == ["0", "1", "2", "3"]
    r = run(platform, host, redirects, "dir", "4", "secret", flags=flags)
    assert r.stdout.splitlines() == ["openat: EBADF", "fchdir: EBADF", "plant: EBADF"], r.stderr
    host_unchanged(host)


def test_preserve_fds_of_a_closed_descriptor_is_an_error(platform, host):
    r = run(platform, host, "", "fds", flags=("--preserve-fds", "2"))
    assert r.returncode == 2
    assert r.stderr == "edgevisor: --preserve-fds 2: descriptor 3 is not open\n"
