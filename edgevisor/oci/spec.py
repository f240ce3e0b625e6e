"""A bundle's config.json, the sandbox's part: the RunConfig boot.run starts (the command,
its user, capabilities and environment, the mounts, the seccomp profile), read by the
holder while create's hooks run (bundle.py read the host's part before).

Whatever the spec asks that edgevisor cannot honour is an OCIError naming the field, except
where runc itself ignores the field. See docs/architecture.md for what maps onto what.
"""

import os

from . import OCIError, bundle
from .bundle import Plan
from .seccomp import compile_profile
from .. import abi
from ..config import RunConfig
from ..platform.isolation import KEPT_CAPABILITIES, Volume

CAPABILITIES = {name: number for number, name in enumerate(abi.CAPABILITY_NAMES)}
# Docker's default set has these two more than edgevisor ever grants: asked for, they are
# withheld (the Sentry makes device nodes and raw sockets no guest needs), as with `do`.
WITHHELD = frozenset({CAPABILITIES["MKNOD"], CAPABILITIES["NET_RAW"]})

# The file systems the Sentry always gives the guest, by where docker and `runc spec` put
# them: honoured by the sandbox's own (a generated /proc and /sys, its /dev, /dev/pts and
# /dev/shm), whatever the spec's source.
PROVIDED = {"/proc": {"proc"}, "/dev": {"tmpfs"}, "/dev/pts": {"devpts"},
            "/dev/shm": {"tmpfs", "bind"}, "/dev/mqueue": {"mqueue"}, "/sys": {"sysfs"},
            "/sys/fs/cgroup": {"cgroup", "cgroup2"}}
# Where the Sentry mounts its own file systems in the guest's root.
MOUNTPOINTS = ("proc", "dev", "tmp")
# Masked and read-only paths the Sentry's /proc and /sys never show from the host.
GENERATED = ("/proc/", "/sys/")


def load(path: str, platform: str, network: str) -> Plan:
    """The whole plan of the bundle at `path` (create reads it in two steps: bundle.read,
    then complete in the holder)."""
    return complete(bundle.read(path), platform, network)


def complete(plan: Plan, platform: str, network: str) -> Plan:
    """plan.run and plan.tmpfs from the spec; OCIError for what edgevisor cannot honour."""
    return bundle.malformed_is_an_error(_complete, plan.spec, plan, platform, network)


def _complete(spec: dict, plan: Plan, platform: str, network: str) -> Plan:
    process, root, linux = spec["process"], spec.get("root") or {}, spec.get("linux") or {}
    user = process.get("user") or {}
    if user.get("username"):
        raise OCIError("process.user.username is not supported (Windows only)")
    env = dict(e.split("=", 1) for e in process.get("env") or [] if "=" in e)
    cfg = RunConfig(argv=list(process["args"]), platform=platform,
                    hostname=spec.get("hostname") or "edgevisor", rootfs=plan.rootfs,
                    overlay=not root.get("readonly", False), env=env,
                    cwd=process.get("cwd") or "/",
                    user=f"{int(user.get('uid', 0))}:{int(user.get('gid', 0))}",
                    group_add=tuple(str(int(g)) for g in user.get("additionalGids") or ()),
                    network=network, spec_capabilities=capabilities(process.get("capabilities")),
                    container_netns=True)
    plan.run = cfg
    _mounts(spec.get("mounts") or (), plan)
    _check_executable(cfg, env.get("PATH", os.defpath))  # boot's execvpe's default too
    for path in (*(linux.get("maskedPaths") or ()), *(linux.get("readonlyPaths") or ())):
        if not path.startswith(GENERATED):
            raise OCIError(f"masked or read-only path {path}: edgevisor honours these under "
                           "/proc and /sys only")
    for key in ("uidMappings", "gidMappings", "intelRdt", "personality"):
        if linux.get(key):
            raise OCIError(f"linux.{key} is not supported by edgevisor")
    for device in linux.get("devices") or ():
        raise OCIError(f"linux.devices: {device.get('path')}: edgevisor's /dev has its own "
                       "devices only")
    if linux.get("seccomp"):
        cfg.seccomp = compile_profile(linux["seccomp"])
    if root.get("readonly"):  # last: a spec refused above leaves the rootfs untouched
        _make_mountpoints(plan)
    return plan


def capabilities(caps: dict | None) -> frozenset[int]:
    """process.capabilities' bounding set, which must be within what edgevisor grants."""
    asked = set()
    for name in (caps or {}).get("bounding") or ():
        number = CAPABILITIES.get(name.removeprefix("CAP_"))
        if number is None:
            raise OCIError(f"unknown capability {name!r}")
        asked.add(number)
    beyond = asked - KEPT_CAPABILITIES - WITHHELD
    if beyond:
        names = ", ".join(sorted(f"CAP_{n}" for n, v in CAPABILITIES.items() if v in beyond))
        raise OCIError(f"capabilities edgevisor does not grant: {names}")
    return frozenset(asked & KEPT_CAPABILITIES)


def _check_executable(cfg: RunConfig, path: str) -> None:
    """As runc: a command that is not in the container's file system (its rootfs, or a
    mount such as docker's --init binary bound at /sbin/docker-init) fails `create`, not
    `start`."""
    name = cfg.argv[0]
    if "/" in name:
        candidates = [os.path.join(cfg.cwd or "/", name)]
    else:
        candidates = [os.path.join(d or ".", name) for d in path.split(":")]
    files = {target for target, _, _, _ in cfg.files}
    for c in candidates:
        c = os.path.normpath(os.path.join("/", c))
        if c in files:
            return
        # The deepest volume holding it hides the rootfs beneath, as its mount does.
        where, inside = cfg.rootfs, c
        for v in sorted(cfg.volumes, key=lambda v: len(v.target)):
            if c == v.target or c.startswith(v.target.rstrip("/") + "/"):
                where, inside = v.source, c[len(v.target):]
        # lexists: an absolute symlink is the guest's to resolve, inside its root
        if os.path.lexists(os.path.join(where, inside.lstrip("/"))):
            return
    raise OCIError(f'exec: "{name}": executable file not found in $PATH')


def _mounts(mounts, plan: Plan) -> None:
    volumes, files = [], []
    for m in mounts:
        dest = os.path.normpath(m["destination"])
        kind = m.get("type") or ("bind" if "bind" in (m.get("options") or ()) else "")
        options = m.get("options") or []
        if kind in PROVIDED.get(dest, ()):
            continue
        if kind == "tmpfs":
            plan.tmpfs.append((dest, ",".join(o for o in options if o.startswith(("size=",
                                                                                  "mode=")))))
        elif kind == "bind" or "bind" in options or "rbind" in options:
            source = m["source"]
            read_only = "ro" in options
            if os.path.isdir(source):
                volumes.append(Volume(os.path.realpath(source), dest, read_only))
            elif os.path.isfile(source):
                with open(source, "rb") as f:
                    # Its permission bits too: docker's --init binary is executed from it.
                    files.append((dest, f.read(), read_only,
                                  os.fstat(f.fileno()).st_mode & 0o777))
            else:
                raise OCIError(f"mount {dest}: source {source} is not a file or directory")
        else:
            raise OCIError(f"mount {dest}: type {kind!r} is not supported by edgevisor")
    plan.run.volumes = tuple(volumes)
    plan.run.files = tuple(files)


def _make_mountpoints(plan: Plan) -> None:
    """As runc, which makes the mountpoints in the rootfs before it turns it read-only
    (a writable one gets them in its in-memory layer). Never through a symlink: a rootfs
    is the image's, and its links are the guest's to follow, not the host's."""
    wanted = [(f"/{name}", True) for name in MOUNTPOINTS]
    wanted += [(v.target, True) for v in plan.run.volumes]
    wanted += [(target, True) for target, _ in plan.tmpfs]
    wanted += [(target, False) for target, _, _, _ in plan.run.files]
    for target, is_dir in wanted:
        path = plan.rootfs
        parts = target.strip("/").split("/")
        for i, part in enumerate(parts):
            path = os.path.join(path, part)
            if os.path.islink(path):
                raise OCIError(f"mount {target}: {path} is a symlink in the read-only rootfs")
            if os.path.lexists(path):
                continue
            if is_dir or i < len(parts) - 1:
                os.mkdir(path, 0o755)
            else:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW,
                                 0o644))
