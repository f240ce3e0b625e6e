"""The holder of an `edgevisor.Sandbox` (api_sandbox.py): the front end process runs
boot.run with a SandboxHold, the OCI holder's machinery (oci/hold.py: the control socket,
exec's spawner) without its start gate and without a command of the caller's as init.

- The guest's first process, under every filter, forks exec's spawner (as for an OCI
  container) and then, instead of exec'ing a command, stays the sandbox's init: edgevisor's
  own code, so a Sandbox needs nothing from the rootfs. It is not dumpable, ignores the
  signals a guest could send it, holds nothing but /dev/null and the gate pipe, and reaps the
  orphans of the commands.
- Every command is an `exec` over the control socket (in the Sandbox's private runtime
  directory): the spawner forks it, under the same filters, and answers its wait status.
- The lifeline: a pipe whose write end only the caller holds. At EOF (Sandbox.close, or the
  caller's death) the Sentry is killed, so nothing of the sandbox outlives its caller;
  boot.run then removes the cgroup and this process exits.
"""

import os
import signal
import threading

from . import abi
from .oci.hold import CREATED, Hold
from .oci.spawner import MAX_FD
from .platform.linux import prctl

# What the init ignores: a pid namespace's init ignores what it has no handler for anyway,
# and ignored, the Sentry does not turn a guest's `kill 1` into the end of the sandbox.
_IGNORED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
            signal.SIGUSR2, signal.SIGPIPE, signal.SIGALRM, signal.SIGTSTP, signal.SIGTTIN,
            signal.SIGTTOU)


class SandboxHold(Hold):
    # exec's spawner and the init: edgevisor's tasks, which a pids limit makes room for
    own_tasks = 2

    def __init__(self, ready_w: int, lifeline_r: int, socket_path: str):
        super().__init__(ready_w, socket_path)
        self.lifeline_r = lifeline_r
        self.started = True  # no gate: the init runs no code of the caller's

    @property
    def fds(self) -> tuple[int, ...]:
        return (self.report_w, self.lifeline_r)

    def open(self) -> None:
        super().open()
        threading.Thread(target=self._follow_caller, daemon=True).start()

    def _follow_caller(self) -> None:
        """At EOF, kill the Sentry: as init of the sandbox's pid namespace, everything in it
        dies first. Before the Sentry exists this process goes instead (a Sentry forked
        meanwhile follows it: PR_SET_PDEATHSIG)."""
        while True:
            try:
                if not os.read(self.lifeline_r, 1):
                    break
            except InterruptedError:
                continue
            except OSError:
                break
        os.kill(self.sentry_pid or os.getpid(), signal.SIGKILL)

    def in_sentry(self) -> None:
        super().in_sentry()
        os.close(self.lifeline_r)

    def wait(self) -> None:
        """In the guest, once the spawner is forked and the user taken: say "created", then
        be the sandbox's init until the sandbox goes. Never returns."""
        try:
            # Not dumpable, as the spawner: its memory is edgevisor's, not the guest's to read.
            prctl(abi.PR_SET_DUMPABLE, 0)
            for sig in _IGNORED:
                signal.signal(sig, signal.SIG_IGN)
            null = os.open("/dev/null", os.O_RDWR)
            for number in (0, 1, 2):
                os.dup2(null, number)
            os.close(null)
            os.write(self.report_w, CREATED)
            # Everything but the gate (whose EOF is the holder's end): the report pipe, the
            # Sentry's hand-over pipes and pid namespace.
            os.closerange(3, self.gate_r)
            os.closerange(self.gate_r + 1, MAX_FD)
            while True:  # the commands' orphans are reparented here
                try:
                    os.waitpid(-1, 0)
                except ChildProcessError:
                    break  # nothing left in the sandbox, and no spawner to start more
                except InterruptedError:
                    pass
            os.read(self.gate_r, 1)
        finally:
            os._exit(0)
