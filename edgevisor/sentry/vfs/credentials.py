"""Who is asking: the part of a task's credentials the VFS consults."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Credentials:
    """`uid` and `gid` are the file system ids (Linux's fsuid/fsgid: what permission checks
    and new files use). A capability is a plain flag for now: uid 0 grants nothing by itself,
    as in Linux, where root's power over files is these capabilities."""

    uid: int
    gid: int
    groups: frozenset[int] = field(default_factory=frozenset)
    cap_dac_override: bool = False  # bypass read/write/search checks (exec needs an x bit)
    cap_dac_read_search: bool = False  # bypass read checks, and search checks on directories
    cap_fowner: bool = False  # act as the owner: sticky directories, hard links
    cap_fsetid: bool = False  # keep S_ISGID on a new file in a setgid directory
    cap_chown: bool = False  # give files away (chown to any uid, chgrp to any gid)

    def __post_init__(self):
        object.__setattr__(self, "groups", frozenset(self.groups))

    @classmethod
    def root(cls) -> "Credentials":
        return cls(0, 0, frozenset(), True, True, True, True, True)

    @classmethod
    def from_status(cls, status: bytes) -> "Credentials":
        """A task's, from its /proc/PID/status: the fsuid and fsgid, the supplementary
        groups and the effective capabilities."""
        def field(name: bytes) -> bytes:  # the lines asked for, not all 60 of them
            start = status.index(b"\n" + name) + len(name) + 1
            return status[start:status.index(b"\n", start)]

        uid = int(field(b"Uid:").split()[3])
        gid = int(field(b"Gid:").split()[3])
        groups = frozenset(int(g) for g in field(b"Groups:").split())
        caps = int(field(b"CapEff:"), 16)
        return cls(uid, gid, groups, bool(caps >> 1 & 1), bool(caps >> 2 & 1),
                   bool(caps >> 3 & 1), bool(caps >> 4 & 1), bool(caps & 1))

    def in_group(self, gid: int) -> bool:
        return gid == self.gid or gid in self.groups
