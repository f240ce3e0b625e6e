"""--rootfs: a busybox root built from Debian's busybox-static, on both platforms."""

import os
import shutil
import subprocess

import pytest

BUSYBOX = shutil.which("busybox") or "/bin/busybox"


@pytest.fixture(scope="session")
def busybox_root(tmp_path_factory):
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox-static is not installed (./run-tests installs it)")
    root = tmp_path_factory.mktemp("busybox-root")
    for d in ("bin", "etc", "proc", "dev", "tmp", "sys"):
        (root / d).mkdir()
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    subprocess.run([str(root / "bin" / "busybox"), "--install", "-s", str(root / "bin")], check=True)
    # --install writes absolute symlinks to the host path; point them inside the root instead.
    for entry in (root / "bin").iterdir():
        if entry.is_symlink():
            entry.unlink()
            entry.symlink_to("busybox")
    (root / "etc" / "hostname").write_text("busybox-root\n")
    return str(root)


def test_busybox_rootfs(sandbox, busybox_root):
    r = sandbox("/bin/sh", "-c", "cat /etc/hostname; ls /bin | grep -c .; uname -n; echo hi | tr a-z A-Z",
                flags=("--rootfs", busybox_root))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "busybox-root"
    assert int(lines[1]) > 100
    assert lines[2:] == ["edgevisor", "HI"]


def test_host_files_are_not_in_a_busybox_rootfs(sandbox, busybox_root):
    r = sandbox("/bin/sh", "-c", "test -e /usr/bin/python3 || echo absent", flags=("--rootfs", busybox_root))
    assert r.stdout == "absent\n"


def test_writes_to_the_rootfs_stay_in_memory(sandbox, busybox_root):
    r = sandbox("/bin/sh", "-c", "echo x > /etc/new && cat /etc/new", flags=("--rootfs", busybox_root))
    assert r.stdout == "x\n", r.stderr
    assert not os.path.exists(os.path.join(busybox_root, "etc", "new"))
