"""A bundle's config.json, read into what `create` does: a RunConfig for boot.run, and the
parts the holder applies itself (network namespace, cgroup, rlimits, sysctls, hooks).

Whatever the spec asks that edgevisor cannot honour is an OCIError naming the field, except
where runc itself ignores the field. See docs/architecture.md for what maps onto what.
"""

import json
import os
import resource
from dataclasses import dataclass, field

from . import OCIError
from .cgroup import check as check_resources
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
# Per-network-namespace sysctls the holder may write in the container's namespace.
SYSCTL_PREFIXES = ("net.",)
HOOKS = {"prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop"}
NAMESPACES = {"pid", "network", "ipc", "uts", "mount", "cgroup", "user", "time"}


@dataclass
class Plan:
    """What one container is: built by `create` from the bundle."""
    run: RunConfig
    bundle: str
    rootfs: str
    annotations: dict
    terminal: bool = False
    console_size: tuple[int, int] | None = None  # (rows, columns)
    netns: str | None = None  # a path to join; None: a new namespace
    cgroups_path: str = ""
    resources: dict = field(default_factory=dict)
    rlimits: list[tuple[int, int, int]] = field(default_factory=list)
    oom_score_adj: int | None = None
    sysctl: dict = field(default_factory=dict)
    hooks: dict = field(default_factory=dict)  # name -> the spec's hooks (oci/hooks.py)
    tmpfs: list[tuple[str, str]] = field(default_factory=list)  # (guest path, options)


def load(bundle: str, platform: str, network: str) -> Plan:
    bundle = os.path.abspath(bundle)
    path = os.path.join(bundle, "config.json")
    try:
        with open(path) as f:
            spec = json.load(f)
    except FileNotFoundError:
        raise OCIError(f"JSON specification file config.json not found in {bundle}") from None
    except (OSError, ValueError) as e:
        raise OCIError(f"config.json: {e}") from None
    if not isinstance(spec, dict):
        raise OCIError("config.json: not a JSON object")
    try:
        return _plan(spec, bundle, platform, network)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise OCIError(f"config.json: malformed ({type(e).__name__}: {e})") from None


def _plan(spec: dict, bundle: str, platform: str, network: str) -> Plan:
    process = spec.get("process")
    if not process or not process.get("args"):
        raise OCIError("config.json: process.args must not be empty")
    root = spec.get("root") or {}
    rootfs = os.path.join(bundle, root.get("path") or "rootfs")
    if not os.path.isdir(rootfs):
        raise OCIError(f"rootfs ({rootfs}) does not exist")
    linux = spec.get("linux") or {}
    user = process.get("user") or {}
    if user.get("username"):
        raise OCIError("process.user.username is not supported (Windows only)")
    env = dict(e.split("=", 1) for e in process.get("env") or [] if "=" in e)
    cfg = RunConfig(argv=list(process["args"]), platform=platform,
                    hostname=spec.get("hostname") or "edgevisor", rootfs=rootfs,
                    overlay=not root.get("readonly", False), env=env,
                    cwd=process.get("cwd") or "/",
                    user=f"{int(user.get('uid', 0))}:{int(user.get('gid', 0))}",
                    group_add=tuple(str(int(g)) for g in user.get("additionalGids") or ()),
                    network=network, spec_capabilities=capabilities(process.get("capabilities")),
                    container_netns=True)
    plan = Plan(cfg, bundle, rootfs, spec.get("annotations") or {},
                terminal=bool(process.get("terminal")),
                cgroups_path=linux.get("cgroupsPath") or "",
                resources=linux.get("resources") or {},
                oom_score_adj=process.get("oomScoreAdj"),
                sysctl=linux.get("sysctl") or {})
    size = process.get("consoleSize")
    if size:
        plan.console_size = (int(size.get("height", 0)), int(size.get("width", 0)))
    plan.rlimits = [_rlimit(r) for r in process.get("rlimits") or ()]
    _mounts(spec.get("mounts") or (), plan)
    _check_executable(cfg, env.get("PATH", os.defpath))  # boot's execvpe's default too
    _namespaces(linux.get("namespaces") or (), plan)
    check_resources(plan.resources)
    for path in (*(linux.get("maskedPaths") or ()), *(linux.get("readonlyPaths") or ())):
        if not path.startswith(GENERATED):
            raise OCIError(f"masked or read-only path {path}: edgevisor honours these under "
                           "/proc and /sys only")
    for key in plan.sysctl:
        if not key.startswith(SYSCTL_PREFIXES) or "/" in key:
            raise OCIError(f"sysctl {key!r} is not allowed in edgevisor (only net.*)")
    for key in ("uidMappings", "gidMappings", "intelRdt", "personality"):
        if linux.get(key):
            raise OCIError(f"linux.{key} is not supported by edgevisor")
    for device in linux.get("devices") or ():
        raise OCIError(f"linux.devices: {device.get('path')}: edgevisor's /dev has its own "
                       "devices only")
    if linux.get("seccomp"):
        cfg.seccomp = compile_profile(linux["seccomp"])
    plan.hooks = {name: hooks for name, hooks in (spec.get("hooks") or {}).items() if hooks}
    for name, hooks in plan.hooks.items():
        if name not in HOOKS:
            raise OCIError(f"hooks.{name} is not an OCI hook")
        if any(not h.get("path") for h in hooks):
            raise OCIError(f"hooks.{name}: a hook without a path")
    if plan.hooks.get("startContainer"):
        raise OCIError("hooks.startContainer: edgevisor cannot run a hook inside the sandbox")
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


def _rlimit(r: dict) -> tuple[int, int, int]:
    name = r["type"]
    number = getattr(resource, name, None)
    if not name.startswith("RLIMIT_") or number is None:
        raise OCIError(f"unknown rlimit {name!r}")
    return number, int(r["soft"]), int(r["hard"])


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


def _namespaces(namespaces, plan: Plan) -> None:
    kinds = set()
    for ns in namespaces:
        kind = ns["type"]
        if kind not in NAMESPACES:
            raise OCIError(f"namespace type {kind!r} is unknown")
        kinds.add(kind)
        if kind == "network" and ns.get("path"):
            plan.netns = ns["path"]
            if not os.path.exists(plan.netns):
                raise OCIError(f"network namespace {plan.netns} does not exist")
        elif ns.get("path"):
            raise OCIError(f"joining a {kind} namespace by path is not supported by edgevisor "
                           "(each sandbox has its own)")
        elif kind in ("user", "time"):
            raise OCIError(f"a {kind} namespace in the spec is not supported by edgevisor")
    if "network" not in kinds:
        raise OCIError("the host's network namespace (no network namespace in the spec) is "
                       "not supported by edgevisor")
