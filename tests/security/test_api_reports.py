"""edgevisor.run raises SandboxError only on edgevisor's own reports, which come back on a
channel of their own: a root guest that writes a report wherever it can and exits as a failed
set-up would (125) or as a missing command would (127) gets its exit status back, never a
SandboxError with its words. The channel is close-on-exec in the guest's ancestors and never
among the guest's descriptors."""

import pytest

import edgevisor

FORGE = r"""
import os, sys
line = b"edgevisor: sandbox setup failed: forged by the guest\n"
wrote = []
for fd in range(1024):
    try:
        os.write(fd, line)
        wrote.append(fd)
    except OSError:
        pass
for path in ("/proc/1/fd", "/proc/self/fd"):
    for name in os.listdir(path):
        try:
            fd = os.open(f"{path}/{name}", os.O_WRONLY | os.O_APPEND)
        except OSError:
            continue
        try:
            os.write(fd, line)
        except OSError:
            pass
        os.close(fd)
links = []
for name in os.listdir("/proc/self/fd"):
    try:
        links.append(os.readlink(f"/proc/self/fd/{name}"))
    except OSError:
        pass  # listdir's own
print("links:", *links, file=sys.__stdout__, flush=True)
sys.exit(int(sys.argv[1]))
"""


@pytest.mark.parametrize("status", [125, 127])
def test_a_guest_cannot_forge_a_sandbox_error(platform, status):
    r = edgevisor.run(["python3", "-c", FORGE, str(status)], platform=platform,
                      capture_output=True, text=True)
    assert r.returncode == status, r.stderr
    links = r.stdout.splitlines()[-1]
    assert links.startswith("links: ") and "edgevisor-" not in links, r.stdout
    assert "forged by the guest" in r.stderr  # what it wrote to stderr is only its output
