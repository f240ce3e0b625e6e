"""--cap-add and --cap-drop. A root guest's capabilities are real host capabilities in the
guest's namespaces, so --cap-add gives back only those of the default set: every other
reaches a host object (isolation.KEPT_CAPABILITIES says which and how)."""

import os

import pytest

from ..support import edgevisor

ALL_KEPT = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
            "NET_BIND_SERVICE", "SYS_CHROOT", "AUDIT_WRITE", "SETFCAP")


@pytest.mark.parametrize("cap", ["NET_ADMIN", "SYS_ADMIN", "CAP_SYS_MODULE", "MKNOD", "NET_RAW",
                                 "DAC_READ_SEARCH", "SYS_TIME", "LINUX_IMMUTABLE", "BPF"])
def test_a_capability_beyond_the_default_set_is_refused_in_one_line(cap):
    r = edgevisor("do", "--cap-add", cap, "--", "true")
    assert r.returncode == 2
    assert r.stderr == (f"edgevisor: --cap-add {cap}: refused: beyond the default set every "
                        "capability reaches past the sandbox (see docs/security.md)\n")


@pytest.mark.parametrize("args,needle", [(("--cap-add", "FLY"), "--cap-add FLY: no such"),
                                         (("--cap-drop", "ALL", "--cap-drop", "FLY"),
                                          "--cap-drop FLY: no such")])
def test_an_unknown_capability_is_one_line(args, needle):
    r = edgevisor("do", *args, "--", "true")
    assert r.returncode == 2 and r.stderr.startswith(f"edgevisor: {needle}"), r.stderr
    assert r.stderr.count("\n") == 1


def test_drop_all_then_add_back_one(sandbox):
    r = sandbox("sh", "-c", "grep CapEff /proc/self/status; touch /tmp/f; chown 1000 /tmp/f "
                "&& echo chowned; chmod 600 /tmp/f 2>/dev/null || echo no chmod",
                flags=("--cap-drop", "ALL", "--cap-add", "chown"))
    assert r.returncode == 0, r.stderr
    # CHOWN back; FOWNER gone, so the file root no longer owns is not root's to chmod
    assert r.stdout.splitlines() == ["CapEff:\t0000000000000001", "chowned", "no chmod"]


def test_cap_drop_takes_one_away(sandbox):
    r = sandbox("sh", "-c", "grep CapEff /proc/self/status; touch /tmp/f; chown 1000 /tmp/f "
                "2>/dev/null || echo refused", flags=("--cap-drop", "CAP_CHOWN"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["CapEff:\t00000000a00405fa", "refused"]


def _host_network() -> tuple:
    """The host's links, lo's mtu, and its loaded modules (where the kernel has any)."""
    modules = open("/proc/modules").read() if os.path.exists("/proc/modules") else None
    with open("/sys/class/net/lo/mtu") as mtu:
        return sorted(os.listdir("/sys/class/net")), mtu.read(), modules


@pytest.mark.parametrize("flags", [(), tuple(f for c in ALL_KEPT for f in ("--cap-add", c))])
def test_no_capability_flag_lets_a_root_guest_administer_the_network(sandbox, flags):
    """With every capability --cap-add gives, a root guest still cannot change a link (no
    CAP_NET_ADMIN) nor make the host load a kernel module through rtnetlink."""
    before = _host_network()
    r = sandbox("sh", "-c", "ip link set lo mtu 1300 2>&1; ip link add edgevisor0 type dummy "
                "2>&1; ip link add edgevisor1 type vcan 2>&1; true",
                flags=flags)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Operation not permitted") == 3, r.stdout
    assert _host_network() == before
