"""What /proc/sys shows the guest: the values of its own namespaces, never the host's files.

Each entry is one of three kinds:
- a machine-wide limit the guest shares with the host (pid_max, pipe-max-size, file-max,
  inotify's and mmap's limits): read from the Sentry's own /proc/sys at each open, as
  whoever reads it on the host would see it;
- a value of a namespace the guest has to itself, fresh when the sandbox started: its ipc
  namespace's SysV and POSIX queue limits are the kernel's defaults (ipc/msgutil.c,
  include/uapi/linux/{msg,sem,shm}.h, ipc/mqueue.c), which nothing in the sandbox can change;
- the Sentry's own state: the uts names, the guest's pids, a boot id of the sandbox.

Files are read-only in the guest (EROFS, as in a container whose /proc/sys is mounted
read-only, Docker's default); the modes shown are Linux's.
"""

# Machine-wide limits, read from the host's /proc/sys: they bound the guest as they bound
# everything on the host.
HOST_LIMITS = {
    "kernel/pid_max": 0o644,
    "kernel/threads-max": 0o644,
    "kernel/ngroups_max": 0o444,
    "kernel/cap_last_cap": 0o444,
    "kernel/overflowuid": 0o644,
    "kernel/overflowgid": 0o644,
    "kernel/pty/max": 0o644,
    "kernel/random/poolsize": 0o444,
    "kernel/random/entropy_avail": 0o444,
    "fs/pipe-max-size": 0o644,
    "fs/file-max": 0o644,
    "fs/nr_open": 0o644,
    "fs/inotify/max_user_watches": 0o644,
    "fs/inotify/max_user_instances": 0o644,
    "fs/inotify/max_queued_events": 0o644,
    "vm/overcommit_memory": 0o644,
    "vm/max_map_count": 0o644,
    "vm/mmap_min_addr": 0o644,
}

_SHM_MAX = (1 << 64) - 1 - (1 << 24)  # ULONG_MAX - 2**24: SHMMAX and SHMALL

# A fresh ipc namespace's values, which are the guest's (it has an ipc namespace of its own).
IPC_DEFAULTS = {
    "kernel/msgmax": b"8192",
    "kernel/msgmnb": b"16384",
    "kernel/msgmni": b"32000",
    "kernel/sem": b"32000\t1024000000\t500\t32000",
    "kernel/shmmax": b"%d" % _SHM_MAX,
    "kernel/shmall": b"%d" % _SHM_MAX,
    "kernel/shmmni": b"4096",
    "fs/mqueue/msg_max": b"10",
    "fs/mqueue/msgsize_max": b"8192",
    "fs/mqueue/queues_max": b"256",
}

# Answered from the Sentry's state (SentryProcView.sysctl).
FROM_SENTRY = {
    "kernel/hostname": 0o644,
    "kernel/domainname": 0o644,
    "kernel/osrelease": 0o444,
    "kernel/ostype": 0o444,
    "kernel/version": 0o444,
    "kernel/ns_last_pid": 0o666,
    "kernel/random/boot_id": 0o444,
    "kernel/random/uuid": 0o444,
}


def names() -> dict[str, int]:
    """Every file under /proc/sys, with the mode Linux shows for it."""
    return {**HOST_LIMITS, **{name: 0o644 for name in IPC_DEFAULTS}, **FROM_SENTRY}
