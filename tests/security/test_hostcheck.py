"""The host-state checker notices each change an escape would make (no sandbox involved:
the test makes the change itself, as an escaped guest would)."""

import os
import shutil

import pytest

from .hostcheck import HostState, build_host


def _touch_marker(h):
    os.utime(h.dir / "marker", ns=(0, 0))


def _chown_victim(h):
    os.chown(h.dir / "victim", 4242, 4343)


def _new_host_name(h):
    (h.dir / "stolen").write_text("x")


def _rootfs_write(h):
    (h.root / "etc/passwd").write_text("root::0:0::/:/bin/sh\n")


def _rootfs_chmod(h):
    os.chmod(h.root / "bin/busybox", 0o4755)


def _ro_write(h):
    (h.ro / "file").write_text("changed\n")


def _ro_new_name(h):
    (h.ro / "new").mkdir()


def _setuid_in_volume(h):
    shutil.copy(h.ro / "busybox", h.vol / "sh")
    os.chmod(h.vol / "sh", 0o4755)


def _setgid_in_volume(h):
    (h.vol / "g").write_text("x")
    os.chmod(h.vol / "g", 0o2755)


def _capability_xattr_in_volume(h):
    # security.capability, version 2, cap_setuid permitted and effective
    value = bytes.fromhex("01000002" "80000000" "00000000" "00000000" "00000000")
    os.setxattr(h.vol / "file", "security.capability", value)


def _trusted_xattr_in_volume(h):
    os.setxattr(h.vol / "file", "trusted.overlay.opaque", b"y")


def _device_in_volume(h):
    os.mknod(h.vol / "mem", 0o20600, os.makedev(1, 1))


def _hard_link_into_volume(h):
    os.link(h.dir / "marker", h.vol / "marker")


CHANGES = [_touch_marker, _chown_victim, _new_host_name, _rootfs_write, _rootfs_chmod,
           _ro_write, _ro_new_name, _setuid_in_volume, _setgid_in_volume,
           _capability_xattr_in_volume, _trusted_xattr_in_volume, _device_in_volume,
           _hard_link_into_volume]


@pytest.mark.skipif(os.geteuid() != 0, reason="chown, trusted.* xattrs and mknod need root")
@pytest.mark.parametrize("change", CHANGES, ids=lambda f: f.__name__.strip("_"))
def test_each_change_is_noticed(tmp_path, change):
    host = build_host(tmp_path / "host", {})
    before = HostState.take(host)
    assert before.changes(host) == []
    change(host)
    assert before.changes(host), f"{change.__name__} went unnoticed"
