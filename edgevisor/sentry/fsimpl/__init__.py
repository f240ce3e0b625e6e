"""File system implementations: each provides the Inodes that sentry/vfs mounts and walks."""

import itertools
import os

# Device numbers for file systems with no device (Linux's get_anon_bdev): major 0, and
# minors from the top of the range, so they do not collide with the host's own tmpfs and
# proc instances in st_dev comparisons made by tests or tools.
_anon_minors = itertools.count(0xFFF00)


def anon_dev() -> int:
    return os.makedev(0, next(_anon_minors))
