"""The Sentry's kernel-wide state."""

import os

from ..fsimpl.gofer import Generation
from ..net.stack import Network


class Kernel:
    """State shared by every task of one sandbox.

    `hostname` and `domainname` live here, not in the host's UTS namespace: the guest's
    uname() and sethostname() are answered from and applied to these fields alone."""

    def __init__(self, hostname: str = "edgevisor", domainname: str = "(none)"):
        self.hostname = hostname.encode()
        self.domainname = domainname.encode()
        host = os.uname()
        self.sysname = host.sysname.encode()
        self.release = host.release.encode()
        self.version = host.version.encode()
        self.machine = host.machine.encode()
        self.generation = Generation()  # bumped once per syscall the Sentry handles
        self.fs = None  # the guest's FileSystem, once boot has built its mounts
        self.net = Network()  # the network mode; boot sets the one asked for
        self.current = None  # the task whose syscall is being handled (Linux's `current`)
        self.pids = None  # the guest's PidNamespace, once it has one (None: ids as given)
        self.init = 0  # the guest's init, in the Sentry's numbering
        self.init_killed_by = 0  # the signal the Sentry stood in for with a SIGKILL to init
        # signals init blocked when they came, and what to do once it takes one with no
        # handler (syscalls/sys_signal.py)
        self.init_queued: dict = {}
        self.job = None  # on a terminal, the guest as the user's job (job_control.GuestJob)
        # /proc/sysvipc/<name> of the guest's ipc namespace, opened at start-up (see
        # platform/sysvipc.py); empty: no such files.
        self.sysvipc: dict[str, int] = {}

    def virtual(self, tid: int) -> int:
        """A task's id as the guest sees it."""
        return tid if self.pids is None else self.pids.virtual(tid)
