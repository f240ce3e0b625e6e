"""Strict-mode seccomp, as an attacker would ask for it (platform/strict.py).

The Sentry writes the strict filter onto the asking thread's stack and, on the seccomp
platform, becomes that thread's tracer: both are places where a guest's choices reach the
Sentry's own machinery. The conformance section "seccomp" checks what a strict task may and
may not do against Linux; here, what a hostile one gets.
"""


def test_strict_mode_asked_with_a_stack_pointer_to_nowhere(sandbox, programs):
    """The filter cannot be written below a stack pointer on an unmapped page: the call fails
    with EFAULT (Linux, which needs no memory for it, answers 0), and the Sentry serves on."""
    r = sandbox(programs["strict_mode"], "bad-stack")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["answer -14", "child exited", "served 1"], r.stdout


def test_a_strict_thread_leaves_its_siblings_alone_until_it_breaks_the_rule(sandbox, programs):
    """Strict mode is per thread: a sibling's emulated calls go on. A forbidden call then ends
    the whole process (Linux ends only the thread, as SIGKILL cannot)."""
    r = sandbox(programs["strict_mode"], "threads", timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["sibling unharmed", "process killed"], r.stdout
