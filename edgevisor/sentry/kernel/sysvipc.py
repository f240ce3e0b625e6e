"""/proc/sysvipc's content as the guest sees it, from the kernel's files of its ipc namespace
(opened at start-up by platform/sysvipc.py), whose pids are in the Sentry's numbering."""

import re

# The columns that hold pids, per file (the first line is a header).
_PID_COLUMNS = {"msg": (5, 6), "sem": (), "shm": (4, 5)}
_FIELD = re.compile(rb"\S+")


def guest_pids(name: str, content: bytes, virtual) -> bytes:
    """`content` with its pid columns turned into the guest's numbering by `virtual`
    (0 for a task outside the guest's namespace, as the kernel shows one there)."""
    columns = _PID_COLUMNS[name]
    if not columns:
        return content
    lines = content.split(b"\n")
    for i in range(1, len(lines)):
        fields = list(_FIELD.finditer(lines[i]))
        if len(fields) <= max(columns):
            continue
        line = bytearray(lines[i])
        for column in sorted(columns, reverse=True):
            field = fields[column]
            try:
                number = int(field.group())
                shown = b"%d" % (virtual(number) if number else 0)
            except (ValueError, OSError):
                shown = b"0"
            line[field.start():field.end()] = shown.rjust(field.end() - field.start())
        lines[i] = bytes(line)
    return b"\n".join(lines)
