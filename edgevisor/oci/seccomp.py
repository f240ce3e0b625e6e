"""The OCI spec's seccomp profile (docker's default, or the user's) compiled to BPF.

The guest loads it just before edgevisor's own filters: every filter runs and the strictest
verdict wins, so the profile's ERRNO or KILL stands, and what it allows still goes to the
Sentry or the host as edgevisor's filters say.
"""

import errno

import pyseccomp

from . import OCIError
from .. import abi
from ..platform.bpf import export_bpf

_OPS = {"SCMP_CMP_NE": pyseccomp.NE, "SCMP_CMP_LT": pyseccomp.LT, "SCMP_CMP_LE": pyseccomp.LE,
        "SCMP_CMP_EQ": pyseccomp.EQ, "SCMP_CMP_GE": pyseccomp.GE, "SCMP_CMP_GT": pyseccomp.GT,
        "SCMP_CMP_MASKED_EQ": pyseccomp.MASKED_EQ}


def _action(name: str, errno_ret: int | None):
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


def compile_profile(profile: dict) -> bytes:
    default = _action(profile.get("defaultAction", ""), profile.get("defaultErrnoRet"))
    f = pyseccomp.SyscallFilter(defaction=default)
    f.set_attr(pyseccomp.Attr.ACT_BADARCH, abi.SECCOMP_RET_KILL_PROCESS)
    f.set_attr(pyseccomp.Attr.CTL_NNP, 0)
    for flag in profile.get("flags") or ():
        raise OCIError(f"seccomp flag {flag} is not supported by edgevisor")
    for rule in profile.get("syscalls") or ():
        action = _action(rule["action"], rule.get("errnoRet"))
        if action == default:
            continue  # libseccomp refuses a rule that repeats the default
        args = [pyseccomp.Arg(a["index"], _OPS[a["op"]], a["value"], a.get("valueTwo", 0))
                if a["op"] == "SCMP_CMP_MASKED_EQ" else
                pyseccomp.Arg(a["index"], _OPS[a["op"]], a["value"])
                for a in rule.get("args") or ()]
        for name in rule.get("names") or [rule.get("name")]:
            if pyseccomp.resolve_syscall(pyseccomp.system_arch(), name) < 0:
                continue  # a name this libseccomp does not know: runc skips it too
            try:
                f.add_rule(action, name, *args)
            except (RuntimeError, ValueError, OSError) as e:
                raise OCIError(f"seccomp rule for {name}: {e}") from None
    return export_bpf(f)
