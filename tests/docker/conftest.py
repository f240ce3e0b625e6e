"""A dockerd and containerd of the tests' own, the images they run, and the runtimes to test.

EDGEVISOR_DOCKER_RUNTIMES (comma-separated; default edgevisor-seccomp,edgevisor-ptrace) names
the daemon.json runtimes the cases run on: `runc` proves a case right before it judges
edgevisor. EDGEVISOR_OCI_TREE points the runtime wrapper at another checkout of edgevisor."""

import os
from pathlib import Path

import pytest

from . import images
from .daemon import REPO, Daemon, edgevisor_runtimes, missing, runtime_wrapper

RUNTIMES = os.environ.get("EDGEVISOR_DOCKER_RUNTIMES",
                          "edgevisor-seccomp,edgevisor-ptrace").split(",")
TREE = Path(os.environ.get("EDGEVISOR_OCI_TREE", REPO))


@pytest.fixture(scope="session")
def daemon():
    why = missing()
    if why:
        pytest.skip(why)
    daemon = Daemon()
    daemon.start(edgevisor_runtimes(runtime_wrapper(daemon.dir, TREE)))
    yield daemon
    left = daemon.stop()
    assert not left, f"the docker tests left behind: {left} (in {daemon.dir})"


@pytest.fixture(scope="session")
def busybox(daemon):
    return images.docker_import(daemon, images.busybox_tar(daemon.dir / "busybox.tar"),
                                "edgevisor-tests/busybox")


@pytest.fixture(scope="session")
def python3(daemon):
    return images.docker_import(daemon, images.python_tar(daemon.dir / "python3.tar"),
                                "edgevisor-tests/python3")


@pytest.fixture(params=RUNTIMES)
def runtime(request):
    return request.param
