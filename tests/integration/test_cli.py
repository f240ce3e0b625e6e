"""The command line: user errors are one line and a non-zero exit, never a traceback."""

import json

import pytest

from ..support import edgevisor


@pytest.mark.parametrize("args,needle", [
    (["do", "--no-such-flag", "--", "true"], "unrecognized arguments"),
    (["do", "--platform=kvm", "--", "true"], "invalid choice"),
    (["do"], "missing command"),
    (["do", "--"], "missing command"),
    (["do", "--rootfs", "/no/such/dir", "--", "true"], "is not a directory"),
    (["do", "--hostname", "x" * 65, "--", "true"], "hostname"),
    (["do", "--strace-syscalls=getpid,nosuchcall", "--", "true"], "nosuchcall"),
    (["do", "--network=bridge", "--", "true"], "invalid choice"),
    (["do", "-p", "8080", "--", "true"], "-p '8080'"),
    (["do", "-p", "0:80", "--", "true"], "ports are 1 to 65535"),
    (["do", "-p", "8080:80/sctp", "--", "true"], "neither tcp nor udp"),
    (["do", "-p", "host.example:8080:80", "--", "true"], "not an IP address"),
    (["do", "--network=none", "-p", "18080:80", "--", "true"], "--network=sandbox only"),
    (["do", "--network=host", "-p", "18080:80", "--", "true"], "--network=sandbox only"),
    (["syscalls", "--arch", "mips"], "invalid choice"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
])
def test_user_errors_are_one_line(args, needle):
    r = edgevisor(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_syscalls_table_and_counts(arch):
    r = edgevisor("syscalls", "--arch", arch)
    assert r.returncode == 0
    first = r.stdout.splitlines()[0]
    assert first.startswith(f"{arch}: ") and "emulate" in first and "ENOSYS" in first
    assert " getpid " in r.stdout and "emulate" in r.stdout


def test_syscalls_json():
    data = json.loads(edgevisor("syscalls", "--format", "json", "--arch", "x86_64").stdout)
    rows = {r["name"]: r for r in data["syscalls"]}
    assert rows["getpid"]["action"] == "emulate"
    assert rows["mount"]["action"] == "deny"
    assert sum(data["counts"].values()) == len(data["syscalls"])


def test_version():
    r = edgevisor("--version")
    assert r.returncode == 0 and r.stdout.startswith("edgevisor ")
