"""Where a sandbox's start-up time goes: `--debug` logs one line with each step's share.

The clock starts when the kernel started the front end's process (its start time in
/proc/self/stat, in clock ticks, so the first step is known to ±10 ms), and the steps are
marked by whichever process does them: the Sentry inherits the front end's marks when it
is forked, and reports them all once the guest is about to run."""

import os
import time


def _process_start() -> float:
    """This process's start, on CLOCK_BOOTTIME (the clock /proc/PID/stat counts on)."""
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime


class StartupClock:
    def __init__(self):
        self._marks = [("process start", _process_start())]

    def mark(self, step: str) -> None:
        """The step just finished."""
        self._marks.append((step, time.clock_gettime(time.CLOCK_BOOTTIME)))

    def mark_once(self, step: str) -> None:
        """The step just finished, unless a front end marked it already (the OCI runtime
        marks its imports before its own steps, then runs boot.run)."""
        if all(name != step for name, _ in self._marks):
            self.mark(step)

    def breakdown(self) -> str:
        total = (self._marks[-1][1] - self._marks[0][1]) * 1e3
        steps = "; ".join(f"{step} {(t - prev) * 1e3:.1f}"
                          for (_, prev), (step, t) in zip(self._marks, self._marks[1:]))
        return f"start-up {total:.1f} ms: {steps} (ms)"


CLOCK = StartupClock()
CLOCK.mark("interpreter")
