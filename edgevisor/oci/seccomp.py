"""The OCI spec's seccomp profile (docker's default, or the user's) compiled to BPF.

The guest loads it just before edgevisor's own filters: every filter runs and the strictest
verdict wins, so the profile's ERRNO or KILL stands, and what it allows still goes to the
Sentry or the host as edgevisor's filters say.

A profile compiles once (platform/bpf_cache.py, keyed by the profile itself): docker sends
the same default profile with every container, and importing libseccomp costs `create`
more than anything else it does.
"""

import errno
import json

from . import OCIError
from .. import abi
from ..platform import bpf_cache
from ..platform.bpf import export_bpf


def compile_profile(profile: dict) -> bytes:
    text = json.dumps(profile, sort_keys=True, separators=(",", ":"))
    return bpf_cache.program("oci-seccomp", (text,), lambda: _compile(profile))


def _action(pyseccomp, name: str, errno_ret: int | None):
    if name == "SCMP_ACT_ALLOW":
        return pyseccomp.ALLOW
    if name == "SCMP_ACT_ERRNO":
        return pyseccomp.ERRNO(errno.EPERM if errno_ret is None else errno_ret)
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return pyseccomp.KILL
    if name == "SCMP_ACT_KILL_PROCESS":
        return pyseccomp.KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return pyseccomp.TRAP
    if name == "SCMP_ACT_LOG":
        return pyseccomp.LOG
    raise OCIError(f"seccomp action {name} is not supported by edgevisor")


def _compile(profile: dict) -> bytes:
    import pyseccomp  # only when no cached program will do

    ops = {"SCMP_CMP_NE": pyseccomp.NE, "SCMP_CMP_LT": pyseccomp.LT, "SCMP_CMP_LE": pyseccomp.LE,
           "SCMP_CMP_EQ": pyseccomp.EQ, "SCMP_CMP_GE": pyseccomp.GE, "SCMP_CMP_GT": pyseccomp.GT,
           "SCMP_CMP_MASKED_EQ": pyseccomp.MASKED_EQ}
    default = _action(pyseccomp, profile.get("defaultAction", ""), profile.get("defaultErrnoRet"))
    f = pyseccomp.SyscallFilter(defaction=default)
    f.set_attr(pyseccomp.Attr.ACT_BADARCH, abi.SECCOMP_RET_KILL_PROCESS)
    f.set_attr(pyseccomp.Attr.CTL_NNP, 0)
    for flag in profile.get("flags") or ():
        raise OCIError(f"seccomp flag {flag} is not supported by edgevisor")
    for rule in profile.get("syscalls") or ():
        action = _action(pyseccomp, rule["action"], rule.get("errnoRet"))
        if action == default:
            continue  # libseccomp refuses a rule that repeats the default
        for a in rule.get("args") or ():
            if a.get("op") not in ops:
                raise OCIError(f"seccomp operator {a.get('op')} is not supported by edgevisor")
        args = [pyseccomp.Arg(a["index"], ops[a["op"]], a["value"], a.get("valueTwo", 0))
                if a["op"] == "SCMP_CMP_MASKED_EQ" else
                pyseccomp.Arg(a["index"], ops[a["op"]], a["value"])
                for a in rule.get("args") or ()]
        for name in rule.get("names") or [rule.get("name")]:
            if pyseccomp.resolve_syscall(pyseccomp.system_arch(), name) < 0:
                continue  # a name this libseccomp does not know: runc skips it too
            try:
                f.add_rule(action, name, *args)
            except (RuntimeError, ValueError, OSError) as e:
                raise OCIError(f"seccomp rule for {name}: {e}") from None
    return export_bpf(f)
