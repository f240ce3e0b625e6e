"""The front end process of one `edgevisor.run` call, or of one `edgevisor.Sandbox` (see
api.py and api_sandbox.py):

    python3 -P -m edgevisor.api_front_end CONFIG_FD REPORT_FD
    python3 -P -m edgevisor.api_front_end CONFIG_FD REPORT_FD READY_FD LIFELINE_FD

CONFIG_FD holds the pickled RunConfig (then, for a Sandbox, its control socket's path);
edgevisor's own reports (what `edgevisor do` prints on stderr) go to REPORT_FD, while the
guest keeps the stdin, stdout and stderr this process was given. The exit status is the
one `edgevisor do` would exit with.

With the last two, this process is a Sandbox's holder (api_holder.py): READY_FD gets
"created" once the sandbox can take commands (or the reason set-up failed), the commands
come over the control socket, and the sandbox ends when LIFELINE_FD reaches EOF.
"""

import os
import pickle
import shutil
import sys

from . import boot
from .config import ConfigError


def main(config_fd: int, report_fd: int, sandbox: tuple[int, int] | None = None) -> int:
    with open(config_fd, "rb") as f:
        cfg = pickle.load(f)
        # A Sandbox's control socket: here rather than in argv, which the guest's ps shows.
        socket_path = pickle.load(f) if sandbox else None
    # Close-on-exec: the guest's exec drops it, so no guest can write a report of its own.
    os.set_inheritable(report_fd, False)
    sys.stderr = open(report_fd, "w", buffering=1, closefd=False)
    try:
        if sandbox is None:
            return boot.run(cfg, report_fd)
        from .api_holder import SandboxHold

        cfg.hold = SandboxHold(*sandbox, socket_path)
        try:
            return boot.run(cfg, report_fd)
        finally:
            cfg.hold.finish()
            # The Sandbox's runtime directory, whether the caller closed it or died.
            shutil.rmtree(os.path.dirname(socket_path), ignore_errors=True)
    except ConfigError as e:
        print(f"edgevisor: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"edgevisor: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""),
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(int(args[0]), int(args[1]),
                  (int(args[2]), int(args[3])) if len(args) == 4 else None))
