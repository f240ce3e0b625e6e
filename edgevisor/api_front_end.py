"""The front end process of one `edgevisor.run` call (see api.py):

    python3 -P -m edgevisor.api_front_end CONFIG_FD REPORT_FD

CONFIG_FD holds the pickled RunConfig; edgevisor's own reports (what `edgevisor do` prints
on stderr) go to REPORT_FD, while the guest keeps the stdin, stdout and stderr this process
was given. The exit status is the one `edgevisor do` would exit with."""

import os
import pickle
import sys

from . import boot
from .config import ConfigError


def main(config_fd: int, report_fd: int) -> int:
    with open(config_fd, "rb") as f:
        cfg = pickle.load(f)
    # Close-on-exec: the guest's exec drops it, so no guest can write a report of its own.
    os.set_inheritable(report_fd, False)
    sys.stderr = open(report_fd, "w", buffering=1, closefd=False)
    try:
        return boot.run(cfg, report_fd)
    except ConfigError as e:
        print(f"edgevisor: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"edgevisor: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""),
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2])))
