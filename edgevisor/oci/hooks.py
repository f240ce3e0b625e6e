"""OCI hooks: each runs with the container's state JSON on stdin; a failing one fails the
step (create, start or delete) with its own message, as runc reports it."""

import json
from . import OCIError


def run(hooks: dict, name: str, state: dict) -> None:
    if not hooks.get(name):
        return
    import subprocess  # only with hooks to run: start and delete stay quick without

    for hook in hooks[name]:
        path, args = hook["path"], hook.get("args") or [hook["path"]]
        try:
            done = subprocess.run(args, executable=path, input=json.dumps(state).encode(),
                                  env=_env(hook.get("env")), capture_output=True,
                                  timeout=hook.get("timeout"), close_fds=True)
        except subprocess.TimeoutExpired:
            raise OCIError(f"{name} hook {path}: timed out after {hook['timeout']}s") from None
        except OSError as e:
            raise OCIError(f"{name} hook {path}: {e.strerror}") from None
        if done.returncode != 0:
            said = (done.stderr or done.stdout).decode(errors="replace").strip()
            raise OCIError(f"{name} hook {path} failed (exit status {done.returncode})"
                           + (f": {said}" if said else ""))


def _env(env: list[str] | None) -> dict:
    return dict(e.split("=", 1) for e in env or () if "=" in e)
