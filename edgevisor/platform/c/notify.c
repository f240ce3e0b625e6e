/* The seccomp platform's hot path: receive user notifications and answer the ones whose
 * result the Sentry has already computed for the same task, uname, and the stats and
 * read-opens of host files (in_view below).
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <linux/stat.h>

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
    uint32_t checked; /* searches_all is known (trust) */
    uint32_t searches_all; /* its credentials search every directory */
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

/* Task `tid`'s memo, made (with a duplicate of `pidfd`, which refers to that task) if it has
 * none; NULL with errno set if the duplicate fails. */
static struct memo *memo_slot(int32_t tid, int pidfd)
{
    struct memo *m = memo_find(tid);
    if (m) return m;
    m = &memos[(uint32_t)tid & (MEMO_SLOTS - 1)]; /* evicted if every probe is taken */
    for (int i = 0; i < MEMO_PROBES; i++) {
        struct memo *c = &memos[(uint32_t)(tid + i) & (MEMO_SLOTS - 1)];
        if (!c->tid) { m = c; break; }
    }
    memo_clear(m);
    int fd = fcntl(pidfd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return NULL;
    m->tid = tid;
    m->pidfd = fd;
    return m;
}

/* Remember `value` as task `tid`'s answer to syscall `nr`; `pidfd` refers to that task and is
 * duplicated. Returns 0 or -errno. */
int ev_remember(int32_t tid, int pidfd, int32_t nr, int64_t value)
{
    int index = memo_index(nr);
    if (index < 0 || tid <= 0) return -EINVAL;
    struct memo *m = memo_slot(tid, pidfd);
    if (!m) return -errno;
    m->values[index] = value;
    m->known |= 1u << index;
    return 0;
}

void ev_forget_trust(void)
{
    for (int i = 0; i < MEMO_SLOTS; i++) memos[i].checked = memos[i].searches_all = 0;
}

int ev_send(int listener, uint64_t id, int64_t val, int32_t error, uint32_t flags)
{
    struct seccomp_notif_resp resp = { .id = id, .val = val, .error = error, .flags = flags };
    return ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) ? -errno : 0;
}

/* --- Stats and read-opens of host files, answered here (in_view) ----------------------------
 *
 * A path that stays on one mount of the guest's host view whose files are the Sentry's own
 * gofer files, the same host objects (the root, /tmp, volumes): the Sentry would answer its
 * stat with the host file's own, and open it for reading as it is. So it is resolved here
 * with openat2 from the start the task's walk has in the view: stat, lstat, newfstatat and
 * statx are answered with that file's stat, open and openat for reading of a regular file
 * or a directory with a descriptor of it, readlink and readlinkat with the link's body (or
 * EINVAL for what is not one). fstat, fstatfs and getdents64 on a descriptor of
 * such a file are the kernel's (CONTINUE), as in Python. Only what Linux would let the task
 * do is answered, and only what the Sentry would answer alike; anything else goes to
 * Python, which answers every error:
 * - the task's credentials search and read everything (trust), so no permission on the
 *   way, nor the file's own for reading, can refuse it;
 * - RESOLVE_NO_XDEV keeps the walk on the start's mount (which must be one the Sentry named),
 *   so it never reaches a mount the view has over a name (the Sentry's /proc, a file volume)
 *   nor leaves the mount through `..` or an absolute symlink; RESOLVE_NO_MAGICLINKS keeps
 *   /proc's links out; RESOLVE_IN_ROOT makes an absolute path the task's root's, and
 *   RESOLVE_BENEATH keeps a path below a mount's root when it starts there;
 * - a trailing symlink is never followed here (protected_symlinks is the Sentry's to check),
 *   a trailing slash never taken, and the names the Sentry mounts over where the view has
 *   no mount (its /sys) are never the answer (`covered`), nor an error a walk that may have
 *   passed them met (walk_failure_is_answer);
 * - the notification is checked valid before the task's memory is written. */

#define VIEW_MOUNTS 32
#define PIDFD_THREAD_FLAG O_EXCL
#define CAP_DAC_OVERRIDE_BIT 1
#define CAP_DAC_READ_SEARCH_BIT 2
#define COVERED 16

struct prefix { char path[256]; size_t len; int fd; uint64_t mnt_id; };

static int view_on;
static int self_trust; /* in_view may read a task's credentials itself (ev_self_trust) */
static int view_root = -1, view_proc = -1;
static long view_page = 4096;
static uint64_t view_mnt_ids[VIEW_MOUNTS];
static int view_mnt_count;
static struct prefix view_prefixes[VIEW_MOUNTS];
static int view_prefix_count;
static struct covered { uint64_t dev, ino, mnt_id; char path[256]; } covered[COVERED];
static int covered_count;

long ev_read_cstring(int32_t tid, uint64_t addr, char *buf, size_t max, size_t page);
long ev_write(int32_t tid, uint64_t addr, const char *buf, size_t n);

/* The id of the mount `fd` is on (as in /proc/PID/mountinfo), or 0. */
uint64_t ev_mnt_id(int fd)
{
    struct statx stx;
    memset(&stx, 0, sizeof stx);
    if (syscall(SYS_statx, fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx)) return 0;
    return (stx.stx_mask & STATX_MNT_ID) ? stx.stx_mnt_id : 0;
}

/* Turns in_view on: `root` is the guest's root in its view, `proc` its pid namespace's
 * procfs; `mnt_ids` the mounts whose stats are the host's. Then ev_view_prefix for each
 * such mount other than the root, ev_view_covered for each name the Sentry mounts over. */
void ev_view_on(int root, int proc, const uint64_t *mnt_ids, int n, long page)
{
    view_root = root;
    view_proc = proc;
    view_page = page;
    view_mnt_count = n < VIEW_MOUNTS ? n : VIEW_MOUNTS;
    memcpy(view_mnt_ids, mnt_ids, view_mnt_count * sizeof *mnt_ids);
    view_prefix_count = covered_count = 0;
    view_on = view_mnt_count > 0;
}

void ev_view_off(void) { view_on = 0; }

/* A mount at `path` (absolute, no `.`, `..` or doubled '/'), whose root `fd` is, in the
 * view. Longer paths first. Returns 0, or -ENOSPC when the table is full (then that mount
 * is reached only from the root, where RESOLVE_NO_XDEV sends it to Python). */
int ev_view_prefix(const char *path, int fd, uint64_t mnt_id)
{
    size_t len = strlen(path);
    if (view_prefix_count == VIEW_MOUNTS || len >= sizeof view_prefixes[0].path) return -ENOSPC;
    struct prefix *p = &view_prefixes[view_prefix_count++];
    memcpy(p->path, path, len + 1);
    p->len = len;
    p->fd = fd;
    p->mnt_id = mnt_id;
    return 0;
}

/* A name the Sentry mounts over where the view has no mount: its host identity, the view's
 * mount it is on and its path in the guest. */
int ev_view_covered(uint64_t dev, uint64_t ino, uint64_t mnt_id, const char *path)
{
    if (covered_count == COVERED || strlen(path) >= sizeof covered[0].path) {
        view_on = 0;
        return -ENOSPC;
    }
    struct covered *c = &covered[covered_count++];
    c->dev = dev;
    c->ino = ino;
    c->mnt_id = mnt_id;
    strcpy(c->path, path);
    return 0;
}

/* The id of the mount `fd` is on if it is one of those in_view serves, else 0. */
static uint64_t mount_allowed(int fd)
{
    uint64_t id = ev_mnt_id(fd);
    for (int i = 0; id && i < view_mnt_count; i++)
        if (view_mnt_ids[i] == id) return id;
    return 0;
}

#if defined(__x86_64__)
#define VIEW_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define VIEW_ARCH AUDIT_ARCH_AARCH64
#endif

#define STAT_FLAGS (AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH)
#define STATX_SYNC_BITS 0x6000 /* AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC */
/* The opens answered here: for reading, of a regular file or a directory. */
#define OPEN_FLAGS (O_CLOEXEC | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_LARGEFILE | O_NOCTTY)

/* Guest descriptor `fd` of the task `m` is, as a descriptor of the Sentry's, if it is on one
 * of the view's mounts whose files are the host's; else -1. */
static int view_descriptor(const struct memo *m, int32_t fd, uint64_t *mnt_id)
{
    if (fd < 0) return -1;
    int own = (int)syscall(SYS_pidfd_getfd, m->pidfd, fd, 0);
    if (own >= 0 && !(*mnt_id = mount_allowed(own))) {
        close(own);
        own = -1;
    }
    return own;
}

/* A walk in the view from a task's start: the start, whether it is this walk's own to close,
 * the path from there and how openat2 resolves it. */
struct walk {
    int start, owned;
    uint64_t mnt_id; /* the start's mount */
    const char *path; /* as the guest wrote it */
    const char *rest;
    struct open_how how;
};

static int walk_begin(const struct seccomp_notif *n, const struct memo *m, int32_t dirfd,
                      const char *path, struct walk *w)
{
    w->start = -1;
    w->owned = 0;
    w->path = w->rest = path;
    memset(&w->how, 0, sizeof w->how);
    w->how.resolve = RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS;
    if (path[0] == '/') {
        for (int i = 0; i < view_prefix_count; i++) {
            const struct prefix *p = &view_prefixes[i];
            if (strncmp(path, p->path, p->len) == 0 && (path[p->len] == '/' || !path[p->len])) {
                w->start = p->fd;
                w->mnt_id = p->mnt_id;
                w->rest = path + p->len;
                while (*w->rest == '/') w->rest++;
                if (!*w->rest) w->rest = ".";
                w->how.resolve |= RESOLVE_BENEATH;
                return 0;
            }
        }
        w->start = view_root;
        w->mnt_id = view_mnt_ids[0];
        w->how.resolve |= RESOLVE_IN_ROOT;
        return 0;
    }
    /* Below the start only: `..` from a cwd or a descriptor is the Sentry's to resolve (the
     * parent it knows), which may not be the kernel's: the kernel answers ENOENT from a
     * directory the host moved out of a volume, the Sentry the volume it was in. */
    w->how.resolve |= RESOLVE_BENEATH;
    if (dirfd == AT_FDCWD) {
        char name[32];
        snprintf(name, sizeof name, "%d/cwd", (int)n->pid);
        w->start = openat(view_proc, name, O_PATH | O_CLOEXEC);
        if (w->start >= 0 && !(w->mnt_id = mount_allowed(w->start))) {
            close(w->start);
            w->start = -1;
        }
    } else {
        w->start = view_descriptor(m, dirfd, &w->mnt_id);
    }
    w->owned = 1;
    return w->start < 0 ? -1 : 0;
}

static int walk_open(struct walk *w, uint64_t flags)
{
    w->how.flags = flags;
    return (int)syscall(SYS_openat2, w->start, w->rest, &w->how, sizeof w->how);
}

static void walk_end(struct walk *w)
{
    if (w->owned && w->start >= 0) close(w->start);
    w->start = -1;
}

/* Whether the walk's failure `err` is the Sentry's answer too. ENOENT and ENOTDIR are, but
 * where the walk could have passed a covered name (which the Sentry's walk enters, and this
 * one finds empty): on a mount that has one, only an absolute path whose walk, tried again
 * with no symlink allowed, fails alike (so it followed none up to its failure) and whose
 * names, `..` taken as written, never make a covered path. */
static int walk_failure_is_answer(struct walk *w, int err)
{
    if (err != ENOENT && err != ENOTDIR) return 0;
    int on_covered_mount = 0;
    for (int i = 0; i < covered_count; i++)
        if (covered[i].mnt_id == w->mnt_id) on_covered_mount = 1;
    if (!on_covered_mount) return 1;
    if (w->path[0] != '/' || w->start != view_root) return 0;
    struct open_how how = w->how;
    how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
    how.resolve |= RESOLVE_NO_SYMLINKS;
    int fd = (int)syscall(SYS_openat2, w->start, w->rest, &how, sizeof how);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (errno != err) return 0;
    char walked[4096];
    size_t len = 0;
    for (const char *c = w->path; *c;) {
        while (*c == '/') c++;
        const char *end = c;
        while (*end && *end != '/') end++;
        size_t n = (size_t)(end - c);
        if (n == 0 || (n == 1 && c[0] == '.')) {
            /* nothing */
        } else if (n == 2 && c[0] == '.' && c[1] == '.') {
            while (len > 0 && walked[len - 1] != '/') len--;
            if (len > 0) len--;
        } else {
            if (len + 1 + n >= sizeof walked) return 0;
            walked[len++] = '/';
            memcpy(walked + len, c, n);
            len += n;
            walked[len] = 0;
            for (int i = 0; i < covered_count; i++)
                if (strcmp(walked, covered[i].path) == 0) return 0;
        }
        c = end;
    }
    return 1;
}

/* An O_PATH descriptor of what the walk names, its final symlink not followed, and its stat
 * in *st; or -1 with *err the errno to answer, or 0 for Python to resolve it. */
static int walk_path(struct walk *w, struct stat *st, int *err)
{
    *err = 0;
    int fd = walk_open(w, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (walk_failure_is_answer(w, e)) *err = e;
        return -1;
    }
    int failed = (int)syscall(__NR_newfstatat, fd, "", st, AT_EMPTY_PATH);
    for (int i = 0; !failed && i < covered_count; i++)
        if (covered[i].dev == st->st_dev && covered[i].ino == st->st_ino) failed = 1;
    if (failed) {
        close(fd);
        return -1;
    }
    return fd;
}

static int write_stat(const struct seccomp_notif *n, uint64_t buf, const struct stat *st,
                      int statx_call)
{
    long wrote;
    if (statx_call) {
        struct statx x;
        memset(&x, 0, sizeof x);
        x.stx_mask = STATX_BASIC_STATS;
        x.stx_blksize = (uint32_t)st->st_blksize;
        x.stx_nlink = (uint32_t)st->st_nlink;
        x.stx_uid = st->st_uid;
        x.stx_gid = st->st_gid;
        x.stx_mode = (uint16_t)st->st_mode;
        x.stx_ino = st->st_ino;
        x.stx_size = (uint64_t)st->st_size;
        x.stx_blocks = (uint64_t)st->st_blocks;
        x.stx_atime.tv_sec = st->st_atim.tv_sec;
        x.stx_atime.tv_nsec = (uint32_t)st->st_atim.tv_nsec;
        x.stx_ctime.tv_sec = st->st_ctim.tv_sec;
        x.stx_ctime.tv_nsec = (uint32_t)st->st_ctim.tv_nsec;
        x.stx_mtime.tv_sec = st->st_mtim.tv_sec;
        x.stx_mtime.tv_nsec = (uint32_t)st->st_mtim.tv_nsec;
        x.stx_rdev_major = major(st->st_rdev);
        x.stx_rdev_minor = minor(st->st_rdev);
        x.stx_dev_major = major(st->st_dev);
        x.stx_dev_minor = minor(st->st_dev);
        wrote = ev_write((int32_t)n->pid, buf, (const char *)&x, sizeof x);
        return wrote == (long)sizeof x;
    }
    wrote = ev_write((int32_t)n->pid, buf, (const char *)st, sizeof *st);
    return wrote == (long)sizeof *st;
}

static int answer_stat(int listener, const struct seccomp_notif *n, uint64_t buf,
                       const struct stat *st, int statx_call)
{
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &n->id)) return 1; /* the task went */
    if (!write_stat(n, buf, st, statx_call)) return 0;
    ev_send(listener, n->id, 0, 0, 0);
    return 1;
}

/* The memo of the task that sent `n`, with whether its credentials search every directory
 * (CAP_DAC_OVERRIDE or CAP_DAC_READ_SEARCH in its effective set, from its /proc status, as
 * the Sentry reads them), or NULL. Known until ev_forget_trust, which the Sentry calls
 * before any call that may change credentials runs. */
static struct memo *trust(int listener, const struct seccomp_notif *n)
{
    int32_t tid = (int32_t)n->pid;
    struct memo *m = memo_find(tid);
    if (m && syscall(SYS_pidfd_send_signal, m->pidfd, 0, NULL, 0)) {
        memo_clear(m); /* the task is gone: its tid may be someone else's now */
        m = NULL;
    }
    if (m && m->checked) return m;
    if (!self_trust) return m;
    int pidfd = (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD_FLAG);
    if (pidfd < 0) return NULL;
    char name[32], status[4096];
    snprintf(name, sizeof name, "%d/status", (int)tid);
    int fd = openat(view_proc, name, O_RDONLY | O_CLOEXEC);
    ssize_t got = fd < 0 ? -1 : read(fd, status, sizeof status - 1);
    if (fd >= 0) close(fd);
    const char *caps = NULL;
    if (got > 0) {
        status[got] = 0;
        caps = strstr(status, "\nCapEff:");
    }
    /* Still the task that asked: its tid named it all along. */
    if (!caps || ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &n->id)) {
        close(pidfd);
        return NULL;
    }
    unsigned long long effective = strtoull(caps + 8, NULL, 16);
    m = memo_slot(tid, pidfd);
    close(pidfd);
    if (!m) return NULL;
    m->checked = 1;
    m->searches_all = (effective >> CAP_DAC_OVERRIDE_BIT | effective >> CAP_DAC_READ_SEARCH_BIT) & 1;
    return m;
}

void ev_self_trust(int on) { self_trust = on; }

/* Answers notification `n` if it is a call this path serves: 1 when answered (or when its
 * task went meanwhile), 0 for Python to answer it. */
static int in_view(int listener, const struct seccomp_notif *n)
{
#ifdef VIEW_ARCH
    const __u64 *a = n->data.args;
    int32_t dirfd = AT_FDCWD, flags = 0;
    uint64_t path_addr = 0, buf = 0;
    int32_t size = 0;
    enum { STAT, STATX, OPEN, READLINK, BY_DESCRIPTOR } call;
    if (n->data.arch != VIEW_ARCH) return 0;
    switch (n->data.nr) {
#ifdef __NR_stat
    case __NR_stat:
    case __NR_lstat:
        path_addr = a[0];
        buf = a[1];
        flags = n->data.nr == __NR_lstat ? AT_SYMLINK_NOFOLLOW : 0;
        call = STAT;
        break;
    case __NR_open:
        path_addr = a[0];
        flags = (int32_t)a[1];
        call = OPEN;
        break;
    case __NR_readlink:
        path_addr = a[0];
        buf = a[1];
        size = (int32_t)a[2];
        call = READLINK;
        break;
    case __NR_getdents:
#endif
    case __NR_fstat:
    case __NR_fstatfs:
    case __NR_getdents64:
        dirfd = (int32_t)a[0];
        call = BY_DESCRIPTOR;
        break;
    case __NR_newfstatat:
        dirfd = (int32_t)a[0];
        path_addr = a[1];
        buf = a[2];
        flags = (int32_t)a[3];
        if (flags & ~STAT_FLAGS) return 0;
        call = STAT;
        break;
    case __NR_statx:
        dirfd = (int32_t)a[0];
        path_addr = a[1];
        flags = (int32_t)a[2];
        buf = a[4];
        if (flags & ~(STAT_FLAGS | STATX_SYNC_BITS) || (flags & STATX_SYNC_BITS) == STATX_SYNC_BITS
            || a[3] & 0x80000000u /* STATX__RESERVED */)
            return 0;
        call = STATX;
        break;
    case __NR_openat:
        dirfd = (int32_t)a[0];
        path_addr = a[1];
        flags = (int32_t)a[2];
        call = OPEN;
        break;
    case __NR_readlinkat:
        dirfd = (int32_t)a[0];
        path_addr = a[1];
        buf = a[2];
        size = (int32_t)a[3];
        call = READLINK;
        break;
    default:
        return 0;
    }
    if (call == READLINK && size <= 0) return 0;
    if (call == OPEN && flags & ~OPEN_FLAGS) return 0; /* O_RDONLY is 0 */
    struct memo *m = trust(listener, n);
    if (!m) return 0;

    /* Calls on a descriptor of a host file: the kernel's answer is the Sentry's. */
    if (call == BY_DESCRIPTOR) {
        uint64_t mnt_id;
        int own = view_descriptor(m, dirfd, &mnt_id);
        if (own < 0) return 0;
        close(own);
        ev_send(listener, n->id, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE);
        return 1;
    }

    char path[4096];
    long len = 0;
    if (path_addr) {
        len = ev_read_cstring((int32_t)n->pid, path_addr, path, sizeof path, (size_t)view_page);
        if (len < 0) return 0;
    }
    struct stat st;
    if (len == 0) {
        /* The descriptor itself (fstat's newfstatat): its host stat. */
        if (call == OPEN || call == READLINK || !(flags & AT_EMPTY_PATH) || !buf) return 0;
        uint64_t mnt_id;
        int fd = view_descriptor(m, dirfd, &mnt_id);
        if (fd < 0) return 0;
        int failed = (int)syscall(__NR_newfstatat, fd, "", &st, AT_EMPTY_PATH);
        close(fd);
        if (failed) return 0;
        return answer_stat(listener, n, buf, &st, call == STATX);
    }
    /* A walk: only for a task that may search every directory on it. */
    if (!m->searches_all || path[len - 1] == '/') return 0;
    struct walk w;
    if (walk_begin(n, m, dirfd, path, &w)) {
        walk_end(&w);
        return 0;
    }
    int err, fd = walk_path(&w, &st, &err);
    if (fd < 0) {
        walk_end(&w);
        if (!err) return 0;
        ev_send(listener, n->id, 0, -err, 0);
        return 1;
    }
    if (call == READLINK) {
        walk_end(&w);
        if (!S_ISLNK(st.st_mode)) {
            close(fd);
            ev_send(listener, n->id, 0, -EINVAL, 0);
            return 1;
        }
        char body[4096];
        long got = (long)syscall(SYS_readlinkat, fd, "", body, sizeof body);
        close(fd);
        if (got <= 0) return 0;
        if (got > size) got = size;
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &n->id)) return 1; /* the task went */
        if (ev_write((int32_t)n->pid, buf, body, (size_t)got) != got) return 0;
        ev_send(listener, n->id, got, 0, 0);
        return 1;
    }
    close(fd);
    int follow = call == OPEN ? !(flags & O_NOFOLLOW) : !(flags & AT_SYMLINK_NOFOLLOW);
    if (S_ISLNK(st.st_mode) && follow) { /* protected_symlinks is the Sentry's to check */
        walk_end(&w);
        return 0;
    }
    if (call != OPEN) {
        walk_end(&w);
        return answer_stat(listener, n, buf, &st, call == STATX);
    }

    /* An open for reading of a regular file or a directory, which a task that searches
     * everything may read: opened again by the same walk with the guest's flags, and
     * O_NONBLOCK until open (a fifo renamed in meanwhile cannot block this loop), then
     * checked to be the very file; installed as the guest's and the Sentry's copy closed
     * before the answer, as Python does. */
    if (!(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
        walk_end(&w);
        return 0;
    }
    int file = walk_open(&w, (uint64_t)(flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    walk_end(&w);
    if (file < 0) return 0;
    struct stat now;
    if ((!(flags & O_NONBLOCK) && fcntl(file, F_SETFL, 0))
        || syscall(__NR_newfstatat, file, "", &now, AT_EMPTY_PATH)
        || now.st_dev != st.st_dev || now.st_ino != st.st_ino) {
        close(file);
        return 0;
    }
    struct seccomp_notif_addfd add = { .id = n->id, .srcfd = (uint32_t)file,
                                       .newfd_flags = (uint32_t)(flags & O_CLOEXEC) };
    int number = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
    close(file);
    if (number < 0) return errno == ENOENT; /* the task went; else Python (EMFILE ...) */
    ev_send(listener, n->id, number, 0, 0);
    return 1;
#else
    (void)listener;
    (void)n;
    return 0;
#endif
}

/* uname(2): the same answer for every task until the guest sets a name (ev_set_uts). */
static char uts[390];
static int uts_on;

void ev_set_uts(const char *buf, size_t n)
{
    uts_on = n == sizeof uts;
    if (uts_on) memcpy(uts, buf, sizeof uts);
}

static int uname_here(int listener, const struct seccomp_notif *n)
{
#ifdef VIEW_ARCH
    if (n->data.arch != VIEW_ARCH || !n->data.args[0]) return 0;
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &n->id)) return 1; /* the task went */
    if (ev_write((int32_t)n->pid, n->data.args[0], uts, sizeof uts) != (long)sizeof uts) return 0;
    ev_send(listener, n->id, 0, 0, 0);
    return 1;
#else
    (void)listener;
    (void)n;
    return 0;
#endif
}

/* Block for the next notification that needs the Sentry; answer remembered ones on the way.
 * Returns 0 with *out filled, or -errno (EINTR: a signal; ENOENT: the task went away). */
int ev_next(int listener, struct ev_notif *out)
{
    struct seccomp_notif n;
    for (;;) {
        memset(&n, 0, sizeof n); /* NOTIF_RECV insists on a zeroed buffer */
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &n)) return -errno;
        if (uts_on && n.data.nr == __NR_uname && uname_here(listener, &n)) continue;
        if (view_on && in_view(listener, &n)) continue;
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
