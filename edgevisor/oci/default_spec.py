"""`edgevisor spec`: runc 1.1's default config.json, and `features`."""

import json
import os

from . import OCIError
from .bundle import HOOKS, NAMESPACES
from .spec import CAPABILITIES, PROVIDED
from .state import OCI_VERSION
from ..platform.isolation import KEPT_CAPABILITIES

_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def default() -> dict:
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True, "user": {"uid": 0, "gid": 0}, "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(_CAPS) for k in ("bounding", "effective", "permitted",
                                                        "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True},
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                         "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"]}}


def write_spec(bundle: str | None) -> int:
    path = os.path.join(bundle or ".", "config.json")
    if os.path.exists(path):
        raise OCIError("File config.json exists. Remove it first.")
    with open(path, "w") as f:
        json.dump(default(), f, indent="\t")
    return 0


def features() -> int:
    print(json.dumps({
        "ociVersionMin": "1.0.0", "ociVersionMax": "1.1.0",
        "hooks": sorted(HOOKS - {"startContainer"}),
        "mountOptions": ["ro", "rw", "bind", "rbind", "rprivate", "nosuid", "nodev",
                         "noexec"],
        "linux": {
            "namespaces": sorted(NAMESPACES - {"user", "time"}),
            "capabilities": [f"CAP_{n}" for n, v in CAPABILITIES.items()
                             if v in KEPT_CAPABILITIES],
            "cgroup": {"v1": True, "v2": True, "systemd": False},
            "seccomp": {"enabled": True,
                        "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                                    "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                                    "SCMP_ACT_LOG", "SCMP_ACT_TRAP"]},
            "mountTypes": sorted({"bind", "tmpfs", *(t for ts in PROVIDED.values() for t in ts)}),
        },
        "annotations": {"io.github.edgevisor.sandbox": "sentry"}}, indent=2))
    return 0
