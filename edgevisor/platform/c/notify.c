/* The seccomp platform's hot path: receive user notifications and answer the ones whose
 * result the Sentry has already computed for the same task.
 *
 * Python decides every answer. Some handlers (getpid, gettid) return a value that depends
 * only on the asking task and never changes while it lives; after Python has computed one,
 * ev_remember() stores it here with a pidfd of the task, and ev_next() answers repeats without
 * waking the interpreter. A pidfd keeps the task it was opened for: once that task is gone,
 * signalling it fails, so a reused tid never inherits another task's answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/seccomp.h>

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

#define MEMO_SLOTS 4096 /* a power of two */
#define MEMO_PROBES 16
#define MEMO_NRS 4

struct ev_notif {
    uint64_t id;
    int32_t tid;
    int32_t nr;
    uint64_t args[6];
};

struct memo {
    int32_t tid; /* 0: empty */
    int32_t pidfd;
    uint32_t known; /* bit i: values[i] holds the answer to memo_nrs[i] */
    int64_t values[MEMO_NRS];
};

static struct memo memos[MEMO_SLOTS];
static int32_t memo_nrs[MEMO_NRS];
static int memo_count;

static void memo_clear(struct memo *m)
{
    if (m->tid) close(m->pidfd);
    memset(m, 0, sizeof *m);
}

static struct memo *memo_find(int32_t tid)
{
    for (int i = 0; i < MEMO_PROBES; i++) {
        struct memo *m = &memos[(uint32_t)(tid + i) & (MEMO_SLOTS - 1)];
        if (m->tid == tid) return m;
    }
    return NULL;
}

static int memo_index(int32_t nr)
{
    for (int i = 0; i < memo_count; i++)
        if (memo_nrs[i] == nr) return i;
    return -1;
}

void ev_set_memo(const int32_t *nrs, int n)
{
    for (int i = 0; i < MEMO_SLOTS; i++) memo_clear(&memos[i]);
    memo_count = n < MEMO_NRS ? n : MEMO_NRS;
    memcpy(memo_nrs, nrs, memo_count * sizeof *nrs);
}

/* Remember `value` as task `tid`'s answer to syscall `nr`; `pidfd` refers to that task and is
 * duplicated. Returns 0 or -errno. */
int ev_remember(int32_t tid, int pidfd, int32_t nr, int64_t value)
{
    int index = memo_index(nr);
    if (index < 0 || tid <= 0) return -EINVAL;
    struct memo *m = memo_find(tid);
    if (!m) {
        m = &memos[(uint32_t)tid & (MEMO_SLOTS - 1)]; /* evicted if every probe is taken */
        for (int i = 0; i < MEMO_PROBES; i++) {
            struct memo *c = &memos[(uint32_t)(tid + i) & (MEMO_SLOTS - 1)];
            if (!c->tid) { m = c; break; }
        }
        memo_clear(m);
        int fd = fcntl(pidfd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) return -errno;
        m->tid = tid;
        m->pidfd = fd;
    }
    m->values[index] = value;
    m->known |= 1u << index;
    return 0;
}

int ev_send(int listener, uint64_t id, int64_t val, int32_t error, uint32_t flags)
{
    struct seccomp_notif_resp resp = { .id = id, .val = val, .error = error, .flags = flags };
    return ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) ? -errno : 0;
}

/* Block for the next notification that needs the Sentry; answer remembered ones on the way.
 * Returns 0 with *out filled, or -errno (EINTR: a signal; ENOENT: the task went away). */
int ev_next(int listener, struct ev_notif *out)
{
    struct seccomp_notif n;
    for (;;) {
        memset(&n, 0, sizeof n); /* NOTIF_RECV insists on a zeroed buffer */
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &n)) return -errno;
        int index = memo_index(n.data.nr);
        if (index >= 0) {
            struct memo *m = memo_find((int32_t)n.pid);
            if (m && (m->known & (1u << index))) {
                if (syscall(SYS_pidfd_send_signal, m->pidfd, 0, NULL, 0) == 0) {
                    ev_send(listener, n.id, m->values[index], 0, 0);
                    continue; /* ENOENT here only means the task left meanwhile */
                }
                memo_clear(m); /* the task is gone: its tid may be someone else's now */
            }
        }
        out->id = n.id;
        out->tid = (int32_t)n.pid;
        out->nr = n.data.nr;
        memcpy(out->args, n.data.args, sizeof out->args);
        return 0;
    }
}

/* Guest memory, for both platforms: process_vm_readv/writev of one range. Bytes moved, or
 * -errno. A range crossing into an unmapped page moves short. */
long ev_read(int32_t tid, uint64_t addr, char *buf, size_t n)
{
    struct iovec local = { buf, n }, remote = { (void *)(uintptr_t)addr, n };
    ssize_t got = process_vm_readv(tid, &local, 1, &remote, 1, 0);
    return got < 0 ? -errno : got;
}

long ev_write(int32_t tid, uint64_t addr, const char *buf, size_t n)
{
    struct iovec local = { (void *)buf, n }, remote = { (void *)(uintptr_t)addr, n };
    ssize_t got = process_vm_writev(tid, &local, 1, &remote, 1, 0);
    return got < 0 ? -errno : got;
}

/* A NUL-terminated string at addr into buf (room for max bytes): its length without the NUL,
 * -ENAMETOOLONG when no NUL comes within max bytes, -EFAULT when memory ends first. Read a page
 * at a time, so that a string ending just before an unmapped page is still read whole. */
long ev_read_cstring(int32_t tid, uint64_t addr, char *buf, size_t max, size_t page)
{
    size_t len = 0;
    while (len < max) {
        size_t chunk = page - (addr % page);
        if (chunk > max - len) chunk = max - len;
        long got = ev_read(tid, addr, buf + len, chunk);
        if (got < 0) return got;
        char *nul = memchr(buf + len, 0, (size_t)got);
        if (nul) return (long)(nul - buf);
        if ((size_t)got != chunk) return -EFAULT;
        len += chunk;
        addr += chunk;
    }
    return -ENAMETOOLONG;
}
