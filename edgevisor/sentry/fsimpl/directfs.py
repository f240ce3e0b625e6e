"""directfs: the Sentry opens host files itself, beneath descriptors the gofer donated.

With `--directfs` (the default, as in modern gVisor) the two hot file calls skip the gofer's
round trip: a lookup opens the child by name relative to its directory's O_PATH descriptor
(every gofer inode holds one), and a guest descriptor is opened relative to the root of its
mount in the guest's view (a descriptor the gofer donates once per mount). Everything else,
and every write-open of a file host users reach (set-id bits are dropped there, by the
gofer: gofer/fs.py), stays with the gofer, which remains the only process that holds host
paths or mount access.

Every open here is `openat2` with:
- RESOLVE_BENEATH: nothing above the descriptor, `..` or an absolute symlink, is reached;
- RESOLVE_NO_SYMLINKS and RESOLVE_NO_MAGICLINKS: the path is one the Sentry resolved, with
  no symlink in it; one a racing guest thread renamed in is refused, never followed;
- RESOLVE_NO_XDEV: never into another mount (a submount of a volume, a mount the view has
  over a name): the gofer, which knows the mounts, answers those;
- O_NOCTTY, O_CLOEXEC, and O_NONBLOCK until opened: a fifo or device renamed over a
  checked name cannot block the Sentry's single serving thread. Not O_NOFOLLOW, which
  RESOLVE_NO_SYMLINKS already is for the last name (ELOOP) and which would stay in the
  description's flags, where the guest's F_GETFL would see it; an O_PATH open takes it, to
  open a symlink itself.

The gofer stays the authority: an open refused here for any reason is asked of the gofer,
whose answer the guest gets, so both modes answer alike. The caller still checks that what
was opened is the inode it resolved.
"""

import errno
import fcntl
import os

from ... import abi
from ...gofer.hostcalls import openat2

RESOLVE = (abi.RESOLVE_BENEATH | abi.RESOLVE_NO_SYMLINKS | abi.RESOLVE_NO_MAGICLINKS
           | abi.RESOLVE_NO_XDEV)
_ALWAYS = abi.O_NOCTTY | abi.O_CLOEXEC


def open_beneath(dirfd: int, path: bytes, flags: int) -> int:
    """A descriptor for `path` beneath `dirfd`, opened with `flags` as asked (O_NONBLOCK
    only if asked); OSError with the kernel's errno otherwise."""
    if not 0 <= flags < 1 << 32:  # open(2)'s int, sign-extended: what open_how cannot hold
        raise OSError(errno.EINVAL, "flags out of range")
    if flags & abi.O_PATH:  # openat2 takes no other flag with it
        return openat2(dirfd, path, flags | abi.O_NOFOLLOW | abi.O_CLOEXEC, 0, RESOLVE)
    fd = openat2(dirfd, path, flags | _ALWAYS | abi.O_NONBLOCK, 0, RESOLVE)
    if not flags & abi.O_NONBLOCK:
        try:
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~abi.O_NONBLOCK)
        except BaseException:
            os.close(fd)
            raise
    return fd
