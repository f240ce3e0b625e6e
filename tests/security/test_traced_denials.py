"""A denied call is trapped to the Sentry when --strace shows it or the log names it. The
Sentry must then answer the table's errno and never let the kernel run it: a root guest
tries the denied calls that would reach past the sandbox, under each flag that traps them,
and neither they nor the host change."""

import pytest

ATTACK = (
    "import ctypes, os\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    # a user namespace of its own (full capabilities there, a larger kernel surface)
    "print('unshare', libc.unshare(0x10000000 | 0x20000), ctypes.get_errno())\n"
    # the host's console log level (SYSLOG_ACTION_CONSOLE_LEVEL)
    "print('syslog', libc.klogctl(8, None, 1), ctypes.get_errno())\n"
    # had unshare run, the kernel would now see an unmapped uid (65534)
    "print('uid', os.getuid())\n")


def _printk() -> str:
    with open("/proc/sys/kernel/printk") as f:
        return f.read()


@pytest.mark.parametrize("flags", [("--strace",), ("--debug",), ("--log", "LOG")])
def test_traced_denials_are_answered_not_run(sandbox, tmp_path, flags):
    flags = tuple(str(tmp_path / "log") if f == "LOG" else f for f in flags)
    before = _printk()
    r = sandbox("python3", "-c", ATTACK, flags=flags)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == ["unshare -1 1", "syslog -1 1"], r.stdout  # EPERM, from the table
    assert lines[2] == "uid 0", r.stdout  # still in the sandbox's own user namespace
    assert _printk() == before
