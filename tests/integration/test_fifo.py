"""A fifo's open, which the Sentry makes itself (issue 10, finding 6), against Linux: the same
script runs natively (the oracle) and in the sandbox, on both platforms, and says the same.

What it checks: an O_NONBLOCK reader opens at once and an O_NONBLOCK writer without a reader
gets ENXIO; O_RDWR never waits; a reader waits until a writer comes and a writer until a
reader does, while the other tasks go on (a Sentry waiting in the open itself would never
answer the parent's calls, and the run would hang); a signal interrupts a waiting open
(EINTR) or, with SA_RESTART, runs its handler and the open goes on; a waiting open that
was interrupted, or whose task was killed, leaves no end of the fifo open behind: a writer
then finds no reader (ENXIO), as on Linux; and the guest's permissions still decide, though
the Sentry opens with its own (another user cannot open root's 0600 fifo in any mode).
"""

import subprocess
import sys

SCRIPT = r"""
import errno, os, signal, tempfile, time

d = tempfile.mkdtemp(dir="/tmp")
fifo = d + "/f"
os.mkfifo(fifo)

def say(*words):
    print(*words, flush=True)

def err(call):
    try:
        os.close(call())
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]

say("nonblocking reader", err(lambda: os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)))
say("nonblocking writer", err(lambda: os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)))
say("read-write", err(lambda: os.open(fifo, os.O_RDWR)))

def no_reader_left():
    # The waiting end of a released open goes away soon, not at once: ask until it did.
    while err(lambda: os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)) == "ok":
        time.sleep(0.01)
    return "no reader left"

class Interrupted(Exception):
    pass

def child(opens, before=None):
    # Fork a child that runs before(), tells us it is about to open, and opens.
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            if before:
                before()
            os.write(ready_w, b"r")
            os._exit(opens())
        except Interrupted:  # a signal sent to interrupt the open came a little early
            os._exit(0)
    os.close(ready_w)
    os.read(ready_r, 1)
    os.close(ready_r)
    return pid

def status(pid):
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

# A waiting reader, then a waiting writer: the parent's own calls are answered meanwhile.
def reader():
    fd = os.open(fifo, os.O_RDONLY)
    return 0 if os.read(fd, 5) == b"hello" else 1
pid = child(reader)
for _ in range(200):
    os.stat(d)
w = os.open(fifo, os.O_WRONLY)
os.write(w, b"hello")
os.close(w)
say("reader got the line", status(pid))

def writer():
    fd = os.open(fifo, os.O_WRONLY)
    os.write(fd, b"world")
    return 0
pid = child(writer)
for _ in range(200):
    os.stat(d)
r = os.open(fifo, os.O_RDONLY)
say("writer's line", os.read(r, 5).decode(), status(pid))
os.close(r)

# A signal whose handler has no SA_RESTART: the open fails with EINTR (the handler raises
# to see it, as Python retries an open on EINTR by itself). Sent until the child is done,
# so that one lands while it waits.
def interrupted():
    try:
        os.open(fifo, os.O_RDONLY)
        return 1
    except Interrupted:
        return 0
def raising():
    def handler(*_):
        raise Interrupted
    signal.signal(signal.SIGUSR1, handler)
pid = child(interrupted, raising)
while os.waitpid(pid, os.WNOHANG) == (0, 0):
    os.kill(pid, signal.SIGUSR1)
    time.sleep(0.02)
say("interrupted reader", no_reader_left())

# With SA_RESTART the handler runs and the open goes on until a writer comes.
def restarted():
    fd = os.open(fifo, os.O_RDONLY)
    return 0 if os.read(fd, 5) == b"again" and ran else 1
ran = False
def restarting():
    def handler(*_):
        global ran
        ran = True
    signal.signal(signal.SIGUSR1, handler)
    signal.siginterrupt(signal.SIGUSR1, False)
pid = child(restarted, restarting)
for _ in range(5):
    os.kill(pid, signal.SIGUSR1)
    time.sleep(0.02)
w = os.open(fifo, os.O_WRONLY)
os.write(w, b"again")
os.close(w)
say("restarted reader", status(pid))

# A waiting open whose task is killed.
pid = child(lambda: os.open(fifo, os.O_RDONLY) and 0)
os.kill(pid, signal.SIGKILL)
say("killed reader", status(pid), no_reader_left())

# The Sentry opens the fifo with its own rights: the guest's must still decide. Another user
# opens a 0600 fifo of root's in no way.
os.chmod(d, 0o755)
os.chmod(fifo, 0o600)
def stranger():
    os.setgid(1000)
    os.setuid(1000)
    for flags in (os.O_RDONLY | os.O_NONBLOCK, os.O_WRONLY | os.O_NONBLOCK, os.O_RDWR,
                  os.O_RDONLY, os.O_WRONLY):
        say("another user", err(lambda: os.open(fifo, flags)))
    return 0
say("stranger", status(child(stranger)))
"""

EXPECTED = """\
nonblocking reader ok
nonblocking writer ENXIO
read-write ok
reader got the line 0
writer's line world 0
interrupted reader no reader left
restarted reader 0
killed reader -9 no reader left
another user EACCES
another user EACCES
another user EACCES
another user EACCES
another user EACCES
stranger 0
"""


def test_the_script_says_what_linux_says():
    native = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=60)
    assert (native.returncode, native.stdout) == (0, EXPECTED), native.stderr


def test_a_fifo_opens_as_on_linux(sandbox):
    r = sandbox("python3", "-c", SCRIPT, timeout=120)
    assert (r.returncode, r.stdout) == (0, EXPECTED), r.stderr
