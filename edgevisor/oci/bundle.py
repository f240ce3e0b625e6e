"""A bundle's config.json, first the part `create` applies on the host: the rootfs, the
network namespace, the cgroup, rlimits, sysctls, the terminal and the hooks (spec.py reads
the rest, the sandbox's RunConfig, in the holder).

Light on purpose (json, os and resource): `create` reads this before it forks the holder,
and the hooks run as soon as the holder is in the network namespace, while it reads the
rest and starts the sandbox. docker's prestart hook is most of a create's time, so all
that went before it is the user's wait.
"""

import json
import os
import resource

from . import OCIError
from .cgroup import check as check_resources

HOOKS = {"prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop"}
NAMESPACES = {"pid", "network", "ipc", "uts", "mount", "cgroup", "user", "time"}
# Per-network-namespace sysctls the holder may write in the container's namespace.
SYSCTL_PREFIXES = ("net.",)


class Plan:
    """What one container is: built by `create` from the bundle (the host's part, here),
    then by the holder (`run`, the sandbox's RunConfig, and the tmpfs mounts: spec.py)."""

    def __init__(self, spec: dict, bundle: str, rootfs: str):
        self.spec, self.bundle, self.rootfs = spec, bundle, rootfs
        self.annotations: dict = spec.get("annotations") or {}
        self.terminal = False
        self.console_size: tuple[int, int] | None = None  # (rows, columns)
        self.netns: str | None = None  # a path to join; None: a new namespace
        self.cgroups_path = ""
        self.resources: dict = {}
        self.rlimits: list[tuple[int, int, int]] = []
        self.oom_score_adj: int | None = None
        self.sysctl: dict = {}
        self.hooks: dict = {}  # name -> the spec's hooks (oci/hooks.py)
        self.run = None  # spec.complete's RunConfig
        self.tmpfs: list[tuple[str, str]] = []  # (guest path, options)


def read(bundle: str) -> Plan:
    """config.json, checked and read as far as the host's part; OCIError for what edgevisor
    cannot honour there."""
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
    return malformed_is_an_error(_host, spec, bundle)


def malformed_is_an_error(read_part, spec: dict, *args):
    """read_part(spec, *args), with a spec of the wrong shape as one OCIError."""
    try:
        return read_part(spec, *args)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise OCIError(f"config.json: malformed ({type(e).__name__}: {e})") from None


def _host(spec: dict, bundle: str) -> Plan:
    process = spec.get("process")
    if not process or not process.get("args"):
        raise OCIError("config.json: process.args must not be empty")
    root = spec.get("root") or {}
    rootfs = os.path.join(bundle, root.get("path") or "rootfs")
    if not os.path.isdir(rootfs):
        raise OCIError(f"rootfs ({rootfs}) does not exist")
    linux = spec.get("linux") or {}
    plan = Plan(spec, bundle, rootfs)
    plan.terminal = bool(process.get("terminal"))
    size = process.get("consoleSize")
    if size:
        plan.console_size = (int(size.get("height", 0)), int(size.get("width", 0)))
    plan.cgroups_path = linux.get("cgroupsPath") or ""
    plan.resources = linux.get("resources") or {}
    check_resources(plan.resources)
    plan.oom_score_adj = process.get("oomScoreAdj")
    plan.rlimits = [_rlimit(r) for r in process.get("rlimits") or ()]
    plan.sysctl = linux.get("sysctl") or {}
    for key in plan.sysctl:
        if not key.startswith(SYSCTL_PREFIXES) or "/" in key:
            raise OCIError(f"sysctl {key!r} is not allowed in edgevisor (only net.*)")
    _namespaces(linux.get("namespaces") or (), plan)
    plan.hooks = {name: hooks for name, hooks in (spec.get("hooks") or {}).items() if hooks}
    for name, hooks in plan.hooks.items():
        if name not in HOOKS:
            raise OCIError(f"hooks.{name} is not an OCI hook")
        if any(not h.get("path") for h in hooks):
            raise OCIError(f"hooks.{name}: a hook without a path")
    if plan.hooks.get("startContainer"):
        raise OCIError("hooks.startContainer: edgevisor cannot run a hook inside the sandbox")
    return plan


def _rlimit(r: dict) -> tuple[int, int, int]:
    name = r["type"]
    number = getattr(resource, name, None)
    if not name.startswith("RLIMIT_") or number is None:
        raise OCIError(f"unknown rlimit {name!r}")
    return number, int(r["soft"]), int(r["hard"])


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
