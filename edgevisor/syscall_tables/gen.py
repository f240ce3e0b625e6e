"""Generate x86_64.py and aarch64.py from the kernel's own syscall lists.

    python3 -m edgevisor.syscall_tables.gen [OUTDIR]

Numbers and names come from the syscall tables in sources/, argument names and C
types from the prototypes in sources/syscalls.h. Each argument gets a *kind*, the
contract with the strace decoder (see KINDS). Output is deterministic: re-running
the generator on the same sources yields byte-identical files.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "sources"

# The argument kinds the strace decoder understands; buf:N / outbuf:N name the
# index of the argument that holds the buffer's length.
KINDS = frozenset({
    "int", "uint", "size", "hex", "ptr", "fd", "dirfd", "path", "str",
    "oflags", "mode", "signo", "pid", "argv", "clockid", "family", "socktype",
})
BUF_KIND = re.compile(r"(?:out)?buf:(\d)\Z")


@dataclass(frozen=True)
class ArchSpec:
    table: str
    abis: tuple[str, ...]
    audit_arch: int
    # Preprocessor symbols that hold on this arch, for the #if blocks of syscalls.h.
    defines: frozenset[str]


def _arm64_abis() -> tuple[str, ...]:
    # scripts/Makefile.asm-headers always includes "common" and "64"; the arch adds
    # the deprecated-but-kept ABIs (renameat, rlimit, ...) in its Makefile.syscalls.
    text = (SOURCES / "arm64-Makefile.syscalls").read_text()
    extra = re.search(r"^syscall_abis_64\s*\+=(.*)$", text, re.M).group(1).split()
    return ("common", "64", *extra)


def arch_specs() -> dict[str, ArchSpec]:
    return {
        "x86_64": ArchSpec("syscall_64.tbl", ("common", "64"), 0xC000003E,
                           frozenset({"__ARCH_WANT_SYS_UTIME"})),
        "aarch64": ArchSpec("syscall.tbl", _arm64_abis(), 0xC00000B7,
                            frozenset({"CONFIG_CLONE_BACKWARDS"})),
    }


# Entry points that syscalls.h does not declare (arch code defines them), or
# declares without argument names. Argument lists as in the SYSCALL_DEFINEx of
# the kernel source; keyed by entry point, or by (arch, entry point).
PROTOTYPES: dict[str | tuple[str, str], str] = {
    # arch/{x86,arm64}/kernel/sys*.c: offset in bytes, unlike mmap_pgoff.
    "sys_mmap": "unsigned long addr, unsigned long len, unsigned long prot, "
                "unsigned long flags, unsigned long fd, unsigned long off",
    "sys_rt_sigreturn": "void",
    "sys_arch_prctl": "int option, unsigned long arg2",
    "sys_iopl": "unsigned int level",
    "sys_modify_ldt": "int func, void __user *ptr, unsigned long bytecount",
    "sys_io_submit": "aio_context_t ctx_id, long nr, struct iocb __user * __user *iocbpp",
    "sys_accept4": "int fd, struct sockaddr __user *upeer_sockaddr, "
                   "int __user *upeer_addrlen, int flags",
    "sys_accept": "int fd, struct sockaddr __user *upeer_sockaddr, int __user *upeer_addrlen",
    "sys_bind": "int fd, struct sockaddr __user *umyaddr, int addrlen",
    "sys_connect": "int fd, struct sockaddr __user *uservaddr, int addrlen",
    "sys_getsockname": "int fd, struct sockaddr __user *usockaddr, int __user *usockaddr_len",
    "sys_getpeername": "int fd, struct sockaddr __user *usockaddr, int __user *usockaddr_len",
    "sys_sendto": "int fd, void __user *buff, size_t len, unsigned int flags, "
                  "struct sockaddr __user *addr, int addr_len",
    "sys_recvfrom": "int fd, void __user *ubuf, size_t size, unsigned int flags, "
                    "struct sockaddr __user *addr, int __user *addr_len",
    "sys_listen": "int fd, int backlog",
    "sys_shutdown": "int fd, int how",
    "sys_socket": "int family, int type, int protocol",
    "sys_socketpair": "int family, int type, int protocol, int __user *usockvec",
    "sys_rt_sigaction": "int sig, const struct sigaction __user *act, "
                        "struct sigaction __user *oact, size_t sigsetsize",
    "sys_pselect6": "int n, fd_set __user *inp, fd_set __user *outp, fd_set __user *exp, "
                    "struct __kernel_timespec __user *tsp, void __user *sig",
    "sys_ppoll": "struct pollfd __user *ufds, unsigned int nfds, "
                 "struct __kernel_timespec __user *tsp, const sigset_t __user *sigmask, "
                 "size_t sigsetsize",
    # CONFIG_CLONE_BACKWARDS (arm64) swaps tls and child_tidptr.
    ("x86_64", "sys_clone"): "unsigned long clone_flags, unsigned long newsp, "
                             "int __user *parent_tidptr, int __user *child_tidptr, "
                             "unsigned long tls",
    ("aarch64", "sys_clone"): "unsigned long clone_flags, unsigned long newsp, "
                              "int __user *parent_tidptr, unsigned long tls, "
                              "int __user *child_tidptr",
}

# Where the type-and-name heuristic below is wrong: (syscall, argument) -> kind.
KIND_OVERRIDES: dict[tuple[str, str], str] = {
    # The kernel copies these in although the pointer is not const.
    ("sethostname", "name"): "buf:1",
    ("setdomainname", "name"): "buf:1",
    ("sendto", "buff"): "buf:2",
    ("setsockopt", "optval"): "buf:4",
    ("init_module", "umod"): "buf:1",
    ("umask", "mask"): "mode",
    ("socket", "family"): "family",
    ("socketpair", "family"): "family",
    ("socket", "type"): "socktype",
    ("socketpair", "type"): "socktype",
    ("open", "flags"): "oflags",
    ("openat", "flags"): "oflags",
    ("open_by_handle_at", "flags"): "oflags",
    ("mq_open", "oflag"): "oflags",
    ("open_by_handle_at", "mountdirfd"): "fd",
    # fanotify_mark's fd is the AT_FDCWD-aware directory for pathname.
    ("fanotify_mark", "fd"): "dirfd",
    # Usually ~0U: "up to the last descriptor".
    ("close_range", "max_fd"): "uint",
    ("eventfd", "count"): "uint",
    ("eventfd2", "count"): "uint",
    ("ioctl", "cmd"): "hex",
    ("setns", "nstype"): "hex",
    # A signature compared against the abort handler, not a signal.
    ("rseq", "sig"): "hex",
    ("ptrace", "data"): "ptr",
    ("kexec_load", "entry"): "ptr",
    # A sigset_t or io_uring_getevents_arg, depending on flags.
    ("io_uring_enter", "argp"): "ptr",
}

DIRFD_NAMES = frozenset({"dfd", "dirfd", "olddfd", "newdfd", "from_dfd", "to_dfd"})
FD_NAMES = frozenset({"fildes", "fd_in", "fd_out", "fdin", "fdout", "mqdes"})
# `char __user *` arguments that name a file: the decoder reads them as paths.
PATH_NAMES = frozenset({
    "filename", "pathname", "path", "oldname", "newname", "old", "new", "specialfile",
    "library", "dir_name", "dev_name", "new_root", "put_old", "from_path", "to_path",
    "special",
})
# Syscalls whose `name` argument is a path rather than an identifier.
NAME_IS_PATH = frozenset({"umount2", "acct", "name_to_handle_at"})
LEN_NAMES = frozenset({"count", "len", "size", "bufsiz", "msg_len", "optlen", "sz"})
ADDR_NAMES = frozenset({"addr", "start", "brk", "new_addr", "newsp", "tls"})
# Pointer typedefs, which the "*" test misses.
POINTER_TYPES = frozenset({"cap_user_header_t", "cap_user_data_t"})
SIGNO_NAMES = frozenset({"sig", "signo"})
SIGNED = frozenset({"int", "long", "loff_t", "off_t", "key_t", "key_serial_t", "timer_t", "mqd_t",
                    "__s32", "s32", "rwf_t", "qid_t", "clockid_t", "pid_t"})
UNSIGNED = frozenset({"unsigned", "unsigned int", "unsigned long", "u32", "__u32", "u64"})


@dataclass(frozen=True)
class CArg:
    ctype: str
    name: str

    @property
    def is_pointer(self) -> bool:
        return "*" in self.ctype

    @property
    def base(self) -> str:
        """The type without qualifiers, __user and pointer stars."""
        words = [w for w in self.ctype.replace("*", " ").split()
                 if w not in ("const", "volatile", "__user", "struct", "union", "enum")]
        return " ".join(words)


# --- kernel sources --------------------------------------------------------

def read_table(spec: ArchSpec) -> list[tuple[int, str, str | None]]:
    """(nr, name, entry point or None) for every row of the wanted ABIs."""
    rows = []
    for line in (SOURCES / spec.table).read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        nr, abi, name, *rest = fields
        if abi in spec.abis:
            rows.append((int(nr), name, rest[0] if rest else None))
    rows.sort()
    numbers = [nr for nr, _, _ in rows]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"{spec.table}: a number appears twice for ABIs {spec.abis}")
    return rows


_COND = re.compile(r"#\s*(ifdef|ifndef|if|elif|else|endif)\b(.*)")


def _eval_condition(expr: str, defines: frozenset[str]) -> bool:
    """Just enough of #if for syscalls.h: ||, &&, !, defined(X), X == N, X != N."""
    values = {"BITS_PER_LONG": 64}

    def atom(term: str) -> bool:
        term = term.strip()
        if term.startswith("!"):
            return not atom(term[1:])
        if m := re.fullmatch(r"defined\s*\(?\s*(\w+)\s*\)?", term):
            return m.group(1) in defines
        if m := re.fullmatch(r"(\w+)\s*(==|!=)\s*(\d+)", term):
            equal = values.get(m.group(1), 0) == int(m.group(3))
            return equal if m.group(2) == "==" else not equal
        if re.fullmatch(r"\w+", term):
            return term in defines
        raise ValueError(f"unsupported #if expression: {expr!r}")

    return any(all(atom(t) for t in alt.split("&&")) for alt in expr.split("||"))


def preprocess(text: str, defines: frozenset[str]) -> str:
    """Keep the lines that survive #if/#ifdef/#else for this arch; drop directives."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"\\\n", " ", text)
    stack: list[tuple[bool, bool]] = []  # (this branch active, some branch taken)
    kept = []
    for line in text.splitlines():
        m = _COND.match(line.strip())
        active = all(a for a, _ in stack)
        if not m:
            if active and not line.lstrip().startswith("#"):
                kept.append(line)
            continue
        word, rest = m.group(1), m.group(2).strip()
        if word in ("ifdef", "ifndef", "if"):
            cond = (rest in defines if word == "ifdef" else
                    rest not in defines if word == "ifndef" else
                    _eval_condition(rest, defines))
            stack.append((cond, cond))
        elif word == "elif":
            _, taken = stack.pop()
            cond = not taken and _eval_condition(rest, defines)
            stack.append((cond, taken or cond))
        elif word == "else":
            _, taken = stack.pop()
            stack.append((not taken, True))
        else:
            stack.pop()
    return "\n".join(kept)


def parse_args(params: str) -> tuple[CArg, ...]:
    params = " ".join(params.split())
    if params in ("", "void"):
        return ()
    args = []
    for param in params.split(","):
        param = param.strip()
        m = re.fullmatch(r"(.*?[\s*])(\w+)", param)
        words = param.replace("*", " ").split()
        unnamed = (m is None or param.endswith("*") or len(words) == 1
                   or words[-1] in ("int", "long", "char", "short", "unsigned", "signed"))
        if unnamed:
            raise ValueError(f"unnamed argument {param!r}")
        args.append(CArg(" ".join(m.group(1).split()), m.group(2)))
    return tuple(args)


def read_prototypes(defines: frozenset[str]) -> dict[str, str]:
    """Entry point -> its parameter list, as written in syscalls.h for this arch."""
    text = preprocess((SOURCES / "syscalls.h").read_text(), defines)
    protos: dict[str, str] = {}
    for m in re.finditer(r"asmlinkage\s+long\s+(sys_\w+)\s*\(([^;]*?)\)\s*;", text):
        if protos.setdefault(m.group(1), m.group(2)) != m.group(2):
            raise ValueError(f"syscalls.h: two prototypes for {m.group(1)} on this arch")
    return protos


# --- argument kinds --------------------------------------------------------

def _is_length(arg: CArg | None) -> bool:
    return (arg is not None and not arg.is_pointer
            and (arg.base == "size_t" or arg.name in LEN_NAMES))


def arg_kind(syscall: str, args: tuple[CArg, ...], i: int) -> str:
    arg = args[i]
    name, base = arg.name, arg.base
    if (syscall, name) in KIND_OVERRIDES:
        return KIND_OVERRIDES[(syscall, name)]
    if base in POINTER_TYPES:
        return "ptr"
    if arg.is_pointer:
        if arg.ctype.count("*") == 2 and base == "char" and name in ("argv", "envp"):
            return "argv"
        if base == "char" and (name in PATH_NAMES or (name == "name" and syscall in NAME_IS_PATH)):
            return "path"
        nxt = args[i + 1] if i + 1 < len(args) else None
        if base in ("char", "void") and arg.ctype.count("*") == 1 and _is_length(nxt):
            # Without const the kernel writes into the buffer (read, getcwd, recvfrom).
            return ("buf:" if "const" in arg.ctype else "outbuf:") + str(i + 1)
        if base == "char" and ("const" in arg.ctype or name == "type"):
            return "str"
        return "ptr"
    if name in DIRFD_NAMES:
        return "dirfd"
    if name == "fd" or name.endswith("fd") or name in FD_NAMES:
        return "fd"
    if base == "umode_t":
        return "mode"
    if base == "pid_t" or name in ("pid", "tgid"):
        return "pid"
    if base == "clockid_t" or name in ("which_clock", "clockid"):
        return "clockid"
    if name in SIGNO_NAMES:
        return "signo"
    if base == "size_t" or ((name in LEN_NAMES or name.endswith("_len")) and base in UNSIGNED):
        return "size"
    if ("flag" in name or name.endswith("flg") or "mask" in name
            or name in ("prot", "mode", "options", "personality") or re.fullmatch(r"arg\d*", name)):
        return "hex"
    if name in ADDR_NAMES:
        return "ptr"
    return "int" if base in SIGNED or base.startswith("__kernel_old") else "uint"


def check_kind(kind: str, nargs: int) -> None:
    m = BUF_KIND.match(kind)
    if not (kind in KINDS or (m and int(m.group(1)) < nargs)):
        raise ValueError(f"bad argument kind {kind!r}")


# --- output ----------------------------------------------------------------

def syscalls(arch: str, spec: ArchSpec) -> list[tuple[int, str, tuple[tuple[str, str], ...]]]:
    protos = read_prototypes(spec.defines)
    out = []
    for nr, name, entry in read_table(spec):
        if entry is None or entry == "sys_ni_syscall":
            # No kernel implementation: the host answers ENOSYS, there is nothing to decode.
            out.append((nr, name, ()))
            continue
        params = PROTOTYPES.get((arch, entry), PROTOTYPES.get(entry, protos.get(entry)))
        if params is None:
            raise ValueError(f"{arch}: no prototype for {entry} ({name}); add it to PROTOTYPES")
        try:
            args = parse_args(params)
        except ValueError as e:
            raise ValueError(f"{arch}: {entry}: {e}; add it to PROTOTYPES") from None
        kinds = tuple((a.name, arg_kind(name, args, i)) for i, a in enumerate(args))
        for _, kind in kinds:
            check_kind(kind, len(args))
        out.append((nr, name, kinds))
    return out


def render_module(arch: str, spec: ArchSpec) -> str:
    lines = [
        "# generated by gen.py, do not edit",
        f"# from sources/{spec.table} (abi {', '.join(spec.abis)}) and sources/syscalls.h;",
        "# regenerate with: python3 -m edgevisor.syscall_tables.gen",
        "",
        f'ARCH = "{arch}"',
        f"AUDIT_ARCH = 0x{spec.audit_arch:08X}",
        "",
        "SYSCALLS = (",
    ]
    for nr, name, args in syscalls(arch, spec):
        lines.append(f"    ({nr}, {name!r}, {args!r}),".replace("'", '"'))
    lines.append(")")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    outdir = Path(argv[0]) if argv else HERE
    for arch, spec in arch_specs().items():
        (outdir / f"{arch}.py").write_text(render_module(arch, spec))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
