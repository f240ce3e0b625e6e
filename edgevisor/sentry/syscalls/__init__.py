"""Syscall handlers, one module per family, collected into one registry keyed by name."""



def per_task_constant(fn):
    """Marks a handler whose answer depends only on the asking task and never changes while
    that task lives (getpid, gettid): a platform may remember it per task and answer repeats
    without calling the handler again."""
    fn.per_task_constant = True
    return fn


from . import sys_file, sys_identity, sys_signal, sys_socket  # noqa: E402 - the family modules use the decorator above

HANDLERS = {
    name[len("sys_"):]: fn
    for module in (sys_file, sys_identity, sys_signal, sys_socket)
    for name, fn in vars(module).items()
    if name.startswith("sys_") and callable(fn)
}
