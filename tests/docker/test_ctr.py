"""containerd without docker: `ctr run --runc-binary` on an image imported into the tests'
containerd (docker save → ctr import), as a user of containerd alone would."""

import shutil

import pytest

from .conftest import TREE
from .daemon import PLATFORMS, runtime_wrapper

NAMESPACE = "edgevisor-tests"


@pytest.fixture(scope="session")
def ctr_image(daemon, busybox):
    archive = daemon.dir / "busybox-image.tar"
    daemon.docker("save", "-o", str(archive), busybox)
    daemon.ctr("-n", NAMESPACE, "images", "import", str(archive), timeout=300)
    archive.unlink()
    yield f"docker.io/{busybox}:latest"
    daemon.ctr("-n", NAMESPACE, "images", "rm", "--sync", f"docker.io/{busybox}:latest",
               check=False)


def runc_binary(daemon, runtime):
    """ctr passes no runtime arguments: the platform is in the binary it is given."""
    if runtime == "runc":
        return shutil.which("runc")
    platform = runtime.removeprefix("edgevisor-")
    assert platform in PLATFORMS, f"no ctr binary for runtime {runtime}"
    return str(runtime_wrapper(daemon.dir, TREE, platform))


def test_ctr_run(daemon, runtime, ctr_image):
    name = f"ctr-{runtime}"
    result = daemon.ctr("-n", NAMESPACE, "run", "--rm", "--fifo-dir", str(daemon.dir / "fifo"),
                        "--runc-binary",
                        runc_binary(daemon, runtime), ctr_image, name,
                        "sh", "-c", "echo hi; exit 7", check=False)
    assert (result.returncode, result.stdout) == (7, "hi\n"), result.stderr
    assert daemon.ctr("-n", NAMESPACE, "containers", "ls", "-q").stdout.split() == []
    assert daemon.ctr("-n", NAMESPACE, "tasks", "ls", "-q").stdout.split() == []
