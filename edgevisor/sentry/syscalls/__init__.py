"""Syscall handlers, one module per family, collected into one registry keyed by name."""

from . import sys_identity

HANDLERS = {
    name[len("sys_"):]: fn
    for module in (sys_identity,)
    for name, fn in vars(module).items()
    if name.startswith("sys_") and callable(fn)
}
