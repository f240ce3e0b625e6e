"""Credentials: --user and --group-add, set*id inside the sandbox, capabilities, and the
owners of the files the guest creates (through the Sentry's VFS)."""

import os
import subprocess

import pytest

from edgevisor.platform.isolation import KEPT_CAPABILITIES

from ..support import EDGEVISOR

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switches to other users")


def test_user_and_groups_and_the_files_they_make(sandbox, tmp_path):
    out = tmp_path / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    r = sandbox("sh", "-c", "id -u; id -g; id -G; echo x > /tmp/f && stat -c '%u:%g' /tmp/f;"
                " echo y > /out/g; echo z > /etc/nope || echo refused",
                flags=("--user", "1000:1000", "--group-add", "27", "-v", f"{out}:/out"))
    assert r.stdout.split() == ["1000", "1000", "1000", "27", "1000:1000", "refused"], r.stderr
    st = os.stat(out / "g")
    assert (st.st_uid, st.st_gid) == (1000, 1000)  # created through the gofer, then given away


def test_names_come_from_the_rootfs(sandbox):
    r = sandbox("id", "-u", flags=("--user", "nobody"))
    assert r.stdout.strip() == "65534", r.stderr


def test_setuid_inside_is_followed_by_the_sentry(sandbox):
    code = ("import os\n"
            "os.setgroups([]); os.setgid(1000); os.setuid(1000)\n"
            "open('/tmp/mine', 'w').close()\n"
            "st = os.stat('/tmp/mine'); print(st.st_uid, st.st_gid)\n"
            "for path in ('/etc/nope', '/root/nope'):\n"
            "    try:\n"
            "        open(path, 'w')\n"
            "    except PermissionError:\n"
            "        print('denied', path)\n")
    r = sandbox("python3", "-c", code)
    assert r.stdout.splitlines() == ["1000 1000", "denied /etc/nope", "denied /root/nope"], r.stderr


def test_capabilities_are_the_sandboxs(sandbox):
    root = sandbox("sh", "-c", "grep CapEff /proc/self/status")
    user = sandbox("sh", "-c", "grep CapEff /proc/self/status", flags=("--user", "1000"))
    assert int(root.stdout.split()[1], 16) == sum(1 << c for c in KEPT_CAPABILITIES)
    assert int(user.stdout.split()[1], 16) == 0


@pytest.mark.parametrize("flags, message", [
    (("--user", "nosuch"), "--user: no user 'nosuch' in the rootfs's /etc/passwd"),
    (("--group-add", "nosuchgroup"), "--group-add: no group 'nosuchgroup'"),
])
def test_unknown_users_are_one_line(flags, message):
    r = subprocess.run([*EDGEVISOR, "do", *flags, "--", "true"], capture_output=True, text=True)
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
