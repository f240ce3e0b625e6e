"""edgevisor: a gVisor-style user-space kernel sandbox for Linux.

    import edgevisor
    done = edgevisor.run(["sh", "-c", "echo hi"], capture_output=True, timeout=10)

The API (api.py) is imported on first use, so that `import edgevisor` stays cheap for the
command line, which imports this package first."""

__version__ = "0.1.0"

_API = ("run", "Sandbox", "SandboxError", "Limits", "Volume")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name == "Sandbox":
        from .api_sandbox import Sandbox

        return Sandbox
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
