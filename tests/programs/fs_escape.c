/* Escape attempts against the sandbox's file system, one section per run:
 *
 *   fs_escape SECTION HOST_DIR
 *
 * HOST_DIR is the host's absolute path of the directory that holds the rootfs, the volumes and
 * the secret (tests/security/test_fs_escapes.py builds it). Every check prints one line,
 * `name: ok <first line of what was read>` or `name: ERRNO`, so that the test compares the
 * sandboxed run with Linux's answer. Inside, every readable file holds a marker naming where
 * it lives ("root", "root-secret", "vol", "sub", "ro" ...); the host's own files hold
 * "HOST-..." and must never be printed. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "oracle.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#define RESOLVE_NO_XDEV 0x01
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_NO_SYMLINKS 0x04
#define RESOLVE_BENEATH 0x08
#define RESOLVE_IN_ROOT 0x10

struct how {
    uint64_t flags, mode, resolve;
};

static const char *host_dir = "";

static void fail(const char *name) { printf("%s: %s\n", name, errname(errno)); }

/* "ok <first line of fd's content>", "ok elf" for an executable. */
static void show_fd(const char *name, int fd) {
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n < 0) {
        fail(name);
        return;
    }
    buf[n] = 0;
    if (n >= 4 && memcmp(buf, "\177ELF", 4) == 0) {
        printf("%s: ok elf\n", name);
        return;
    }
    buf[strcspn(buf, "\n")] = 0;
    printf("%s: ok %s\n", name, buf);
}

static void show_at(const char *name, int dirfd, const char *path) {
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail(name);
        return;
    }
    show_fd(name, fd);
    close(fd);
}

static void show(const char *name, const char *path) { show_at(name, AT_FDCWD, path); }

/* "ok own" if path holds exactly this process's environment block (NUL-separated, as exec
 * laid it out), "ok other" if not: whose environment a /proc link shows, whatever the
 * caller's environment is. */
static void show_environ_owner(const char *name, const char *path) {
    extern char **environ;
    static char got[1 << 16], own[1 << 16];
    size_t n = 0, m = 0;
    ssize_t r;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail(name);
        return;
    }
    while (n < sizeof got && (r = read(fd, got + n, sizeof got - n)) > 0) n += r;
    close(fd);
    for (char **e = environ; *e; e++) {
        size_t len = strlen(*e) + 1;
        if (m + len > sizeof own) break;
        memcpy(own + m, *e, len);
        m += len;
    }
    printf("%s: ok %s\n", name, n == m && memcmp(got, own, n) == 0 ? "own" : "other");
}

static void show2(const char *name, int dirfd, const char *path, uint64_t resolve) {
    struct how how = {O_RDONLY | O_CLOEXEC, 0, resolve};
    int fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    if (fd < 0) {
        fail(name);
        return;
    }
    show_fd(name, fd);
    close(fd);
}

static void show_link(const char *name, const char *path) {
    char buf[PATH_MAX];
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n < 0) {
        fail(name);
        return;
    }
    buf[n] = 0;
    printf("%s: ok %s\n", name, buf);
}

static void show_cwd(const char *name) {
    char buf[PATH_MAX];
    if (!getcwd(buf, sizeof buf)) {
        fail(name);
        return;
    }
    printf("%s: ok %s\n", name, buf);
}

static void result(const char *name, long r) {
    if (r < 0)
        fail(name);
    else
        printf("%s: ok\n", name);
}

static int same_file(const struct stat *a, const struct stat *b) {
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* "ok same" when PATH (at dirfd) is the directory REF, else "ok different". */
static void same_dir(const char *name, int dirfd, const char *path, const char *ref) {
    struct stat a, b;
    if (fstatat(dirfd, path, &a, 0) < 0 || stat(ref, &b) < 0) {
        fail(name);
        return;
    }
    printf("%s: ok %s\n", name, same_file(&a, &b) ? "same" : "different");
}

static void host_path(char *out, const char *rest) {
    snprintf(out, PATH_MAX, "%s%s", host_dir, rest);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* --- `..` past the root and out of mounts ------------------------------------------- */

static void section_dotdot(void) {
    show("root_dotdot", "/../../../marker");
    show("root_dotdot_secret", "/../secret");
    char many[3 * 200 + 16] = "";
    for (int i = 0; i < 200; i++) strcat(many, "../");
    strcat(many, "secret");
    show("dotdot_many", many);
    result("chdir_dotdot", chdir("/../../.."));
    show("chdir_dotdot_marker", "marker");
    show("chdir_dotdot_up", "../../secret");
    show_cwd("chdir_dotdot_cwd");
    show("vol_dotdot", "/v/../marker");
    show("vol_dotdot2", "/v/../../marker");
    show("vol_sub_dotdot", "/v/sub/../../../../secret");
    same_dir("vol_parent_is_root", AT_FDCWD, "/v/..", "/");
    same_dir("ro_parent_is_root", AT_FDCWD, "/ro/..", "/");
    same_dir("tmp_parent_is_root", AT_FDCWD, "/tmp/..", "/");
    show("ro_dotdot", "/ro/../marker");
    show("tmp_dotdot", "/tmp/../secret");
    result("chdir_vol_sub", chdir("/v/sub"));
    show("vol_cwd_dotdot", "../../secret");
    show("vol_cwd_dotdot_deep", "../../../../../../marker");
    for (int i = 0; i < 6; i++) chdir("..");
    show_cwd("vol_cwd_climbed");
    show("vol_cwd_climbed_marker", "marker");

    /* The parent of the volume, listed: the rootfs (bin, v), never the host's (root, vol). */
    DIR *d = opendir("/v/..");
    if (!d) {
        fail("vol_parent_listing");
    } else {
        int bin = 0, v = 0, vol = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            bin |= !strcmp(e->d_name, "bin");
            v |= !strcmp(e->d_name, "v");
            vol |= !strcmp(e->d_name, "vol");
        }
        closedir(d);
        printf("vol_parent_listing: ok %s\n", bin && v && !vol ? "rootfs" : "OTHER");
    }
}

/* --- symlinks that point out --------------------------------------------------------- */

static void section_symlinks(void) {
    char p[PATH_MAX];
    show("abs_out", "/v/abs_out");
    show("abs_out_dir", "/v/abs_out_dir/secret");
    show("rel_out", "/v/rel_out");
    show("rel_deep", "/v/rel_deep");
    show("slash", "/v/slash/../secret");
    show("up", "/v/up/marker");
    show("up_secret", "/v/up/../secret");
    show("loop", "/v/loop_a");
    show("loop_dir", "/v/loop_a/x");
    show("self_loop", "/v/self");
    show("chain40", "/v/c1");
    show("chain41", "/v/c0");
    show("chain41_dir", "/v/c0/x");
    {
        int fd = open("/v/rel_out", O_RDONLY | O_NOFOLLOW);
        if (fd < 0) fail("nofollow");
        else { printf("nofollow: ok opened\n"); close(fd); }
    }
    show("proc_root_link", "/v/proc_root/secret");

    /* The same kinds, made by the guest. */
    host_path(p, "/secret");
    result("g_abs_make", symlink(p, "/v/g_abs"));
    show("g_abs", "/v/g_abs");
    result("g_absdir_make", symlink(host_dir, "/v/g_absdir"));
    show("g_absdir", "/v/g_absdir/secret");
    result("g_rel_make", symlink("../secret", "/v/g_rel"));
    show("g_rel", "/v/g_rel");
    show_link("g_rel_readlink", "/v/g_rel");
    result("g_deep_make", symlink("../../../../../../secret", "/v/sub/g_deep"));
    show("g_deep", "/v/sub/g_deep");
    result("g_tmp_make", symlink("/../../../secret", "/tmp/g"));
    show("g_tmp", "/tmp/g");
    result("g_tmp_rel_make", symlink("../../../../secret", "/tmp/g2"));
    show("g_tmp_rel", "/tmp/g2");
    result("g_loop_make", symlink("g_loop", "/v/g_loop"));
    show("g_loop", "/v/g_loop");
    result("chdir_up_link", chdir("/v/up"));
    show_cwd("chdir_up_link_cwd");
    show("chdir_up_link_secret", "../secret");

    /* Creating through a dangling link: never on the host's side of the link. */
    host_path(p, "/created");
    result("g_dangling_make", symlink(p, "/v/g_dangling"));
    {
        int fd = open("/v/g_dangling", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0) fail("creat_dangling_abs");
        else { printf("creat_dangling_abs: ok created\n"); close(fd); }
    }
    result("g_dangling_rel_make", symlink("../../created", "/v/sub/g_dangling_rel"));
    {
        int fd = open("/v/sub/g_dangling_rel", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0) fail("creat_dangling_rel");
        else { printf("creat_dangling_rel: ok created\n"); close(fd); }
    }
    {
        struct stat st;
        if (stat("/created", &st) < 0) fail("creat_dangling_rel_where");
        else printf("creat_dangling_rel_where: ok rootfs\n");
    }
}

/* --- magic links in /proc ------------------------------------------------------------ */

static void section_proc(void) {
    char p[PATH_MAX];
    show_link("self_root_readlink", "/proc/self/root");
    show("self_root_marker", "/proc/self/root/marker");
    show("self_root_dotdot", "/proc/self/root/../secret");
    show("self_root_vol_dotdot", "/proc/self/root/v/../../secret");
    show("thread_self_root", "/proc/thread-self/root/../marker");
    snprintf(p, sizeof p, "/proc/self/task/%ld/root/../../secret", (long)syscall(SYS_gettid));
    show("task_root", p);
    show_link("self_exe", "/proc/self/exe");
    show("self_exe_open", "/proc/self/exe");

    result("chdir_vol_sub", chdir("/v/sub"));
    show_link("self_cwd_readlink", "/proc/self/cwd");
    show("self_cwd_marker", "/proc/self/cwd/marker");
    show("self_cwd_dotdot", "/proc/self/cwd/../../../secret");

    int dir = open("/v/sub", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    snprintf(p, sizeof p, "/proc/self/fd/%d", dir);
    show_link("fd_readlink", p);
    snprintf(p, sizeof p, "/proc/self/fd/%d/marker", dir);
    show("fd_marker", p);
    snprintf(p, sizeof p, "/proc/self/fd/%d/../../../secret", dir);
    show("fd_dotdot", p);

    /* Re-opening through /proc/self/fd must not upgrade a read-only file to writable. */
    int ro = open("/ro/w", O_RDONLY | O_CLOEXEC);
    snprintf(p, sizeof p, "/proc/self/fd/%d", ro);
    {
        int fd = open(p, O_RDWR | O_CLOEXEC);
        if (fd < 0) fail("fd_reopen_ro_rdwr");
        else { printf("fd_reopen_ro_rdwr: ok WRITABLE\n"); close(fd); }
    }
    int ropath = open("/ro/w", O_PATH | O_CLOEXEC);
    snprintf(p, sizeof p, "/proc/self/fd/%d", ropath);
    {
        int fd = open(p, O_WRONLY | O_CLOEXEC);
        if (fd < 0) fail("fd_reopen_opath_wronly");
        else { printf("fd_reopen_opath_wronly: ok WRITABLE\n"); close(fd); }
    }
    show("fd_reopen_opath_rdonly", p);
    int vol = open("/v/marker", O_RDONLY | O_CLOEXEC);
    snprintf(p, sizeof p, "/proc/self/fd/%d", vol);
    {
        int fd = open(p, O_RDWR | O_CLOEXEC);
        if (fd < 0) fail("fd_reopen_vol_rdwr");
        else { show_fd("fd_reopen_vol_rdwr", fd); close(fd); }
    }
    close(dir);
    close(ro);
    close(ropath);
    close(vol);
}

/* Every magic link of every process the guest can see: nothing reads a host file. */
static int scan_leaks;

static void scan_one(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return;
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
        buf[n] = 0;
        if (strstr(buf, "HOST-")) {
            printf("scan_leak: %s\n", path);
            scan_leaks++;
        }
    }
}

static void section_proc_scan(void) {
    char p[PATH_MAX], hp[PATH_MAX];
    DIR *procs = opendir("/proc");
    if (!procs) {
        fail("proc_scan");
        return;
    }
    int seen = 0;
    struct dirent *e;
    while ((e = readdir(procs))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        seen++;
        static const char *links[] = {"root", "cwd"};
        for (int i = 0; i < 2; i++) {
            static const char *rest[] = {"/marker", "/secret", "/../secret", "/../marker",
                                         "/../../../../../../secret"};
            for (int j = 0; j < 5; j++) {
                snprintf(p, sizeof p, "/proc/%s/%s%s", e->d_name, links[i], rest[j]);
                scan_one(p);
            }
            host_path(hp, "/secret");
            snprintf(p, sizeof p, "/proc/%s/%s%s", e->d_name, links[i], hp);
            scan_one(p);
            host_path(hp, "/marker");
            snprintf(p, sizeof p, "/proc/%s/%s%s", e->d_name, links[i], hp);
            scan_one(p);
        }
        snprintf(p, sizeof p, "/proc/%s/fd", e->d_name);
        DIR *fds = opendir(p);
        if (!fds) continue;
        struct dirent *f;
        while ((f = readdir(fds))) {
            if (f->d_name[0] == '.') continue;
            snprintf(p, sizeof p, "/proc/%s/fd/%s", e->d_name, f->d_name);
            char target[PATH_MAX];
            ssize_t n = readlink(p, target, sizeof target - 1);
            if (n > 0) {
                target[n] = 0;
                /* Only files: a pipe or a terminal would block or eat input. */
                if (target[0] != '/' || !strncmp(target, "/dev/", 5)) continue;
            }
            scan_one(p);
            snprintf(p, sizeof p, "/proc/%s/fd/%s/../secret", e->d_name, f->d_name);
            scan_one(p);
        }
        closedir(fds);
    }
    closedir(procs);
    printf("proc_scan: ok %s\n", scan_leaks ? "LEAK" : (seen ? "clean" : "no-processes"));
}

/* --- the Sentry, pid 1 of the guest's pid namespace ---------------------------------- */

static void section_sentry(void) {
    char p[PATH_MAX], hp[PATH_MAX];
    show_link("pid1_root_readlink", "/proc/1/root");
    show_link("pid1_cwd_readlink", "/proc/1/cwd");
    show_link("pid1_exe_readlink", "/proc/1/exe");
    {
        DIR *d = opendir("/proc/1/root/");
        if (!d) fail("pid1_root_list");
        else { printf("pid1_root_list: ok listed\n"); closedir(d); }
        d = opendir("/proc/1/cwd/");
        if (!d) fail("pid1_cwd_list");
        else { printf("pid1_cwd_list: ok listed\n"); closedir(d); }
        d = opendir("/proc/1/fd/");
        if (!d) fail("pid1_fd_list");
        else { printf("pid1_fd_list: ok listed\n"); closedir(d); }
    }
    host_path(hp, "/secret");
    snprintf(p, sizeof p, "/proc/1/root%s", hp);
    show("pid1_root_host_secret", p);
    show("pid1_root_etc", "/proc/1/root/etc/passwd");
    show("pid1_exe", "/proc/1/exe");
    show_environ_owner("pid1_environ", "/proc/1/environ");
    show("pid1_mem", "/proc/1/mem");
    show("pid1_fd0", "/proc/1/fd/0");
    show("pid1_fd3", "/proc/1/fd/3");
    {
        /* A map_files link opens the mapped file itself, past every path check: its first
         * mapping (the program's own ELF). */
        DIR *d = opendir("/proc/1/map_files");
        struct dirent *e = NULL;
        if (d) while ((e = readdir(d)) && e->d_name[0] == '.') {}
        char link[300];
        if (!e) fail("pid1_map_files");
        else {
            snprintf(link, sizeof link, "/proc/1/map_files/%s", e->d_name);
            show("pid1_map_files", link);
        }
        if (d) closedir(d);
    }
    result("pid1_chdir_root", chdir("/proc/1/root"));
    result("pid1_chdir_cwd", chdir("/proc/1/cwd"));
    {
        int fd = open("/proc/1/root", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) fail("pid1_root_opath");
        else { printf("pid1_root_opath: ok opened\n"); close(fd); }
    }
    {
        struct how how = {O_RDONLY | O_CLOEXEC, 0, 0};
        int fd = syscall(SYS_openat2, AT_FDCWD, p, &how, sizeof how);
        if (fd < 0) fail("pid1_root_openat2");
        else { show_fd("pid1_root_openat2", fd); close(fd); }
    }
}

/* --- hard links out of their mounts -------------------------------------------------- */

static void section_hardlinks(void) {
    char p[PATH_MAX];
    result("link_passwd_to_vol", link("/etc/passwd", "/v/pw"));
    result("link_passwd_dotdot", link("/v/../etc/passwd", "/v/pw2"));
    result("link_secret_to_vol", link("/secret", "/v/pw3"));
    result("link_vol_to_tmp", link("/v/marker", "/tmp/l"));
    result("link_vol_to_ro", link("/v/marker", "/ro/l"));
    result("link_ro_to_vol", link("/ro/w", "/v/l"));
    close(open("/tmp/t", O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    result("link_tmp_to_vol", link("/tmp/t", "/v/t"));
    result("link_vol_to_root", link("/v/marker", "/v/../stolen"));
    result("link_follow_out", linkat(AT_FDCWD, "/v/rel_out", AT_FDCWD, "/v/pw4", AT_SYMLINK_FOLLOW));
    int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    result("link_proc_fd", linkat(AT_FDCWD, p, AT_FDCWD, "/v/pw5", AT_SYMLINK_FOLLOW));
    result("link_empty_path", linkat(fd, "", AT_FDCWD, "/v/pw6", AT_EMPTY_PATH));
    close(fd);
    result("rename_vol_to_tmp", rename("/v/marker", "/tmp/m"));
    result("rename_vol_to_root", rename("/v/marker", "/v/../stolen"));
    result("rename_mountpoint", rename("/v", "/vv"));
    result("rename_over_mountpoint", rename("/tmp/t", "/v"));

    /* Within the volume the same calls work. */
    result("link_within_vol", link("/v/marker", "/v/marker2"));
    struct stat st;
    if (stat("/v/marker", &st) < 0) fail("link_within_vol_nlink");
    else printf("link_within_vol_nlink: ok %ld\n", (long)st.st_nlink);
    result("link_symlink_itself", link("/v/rel_out", "/v/rel_out2"));
    show_link("link_symlink_itself_readlink", "/v/rel_out2");
    show("link_symlink_itself_open", "/v/rel_out2");
}

/* --- a second thread rewrites the path while open runs -------------------------------- */

static volatile int stop;
static char path_buf[16] __attribute__((aligned(16)));
static uint64_t flip_a, flip_b;

static void *flipper(void *arg) {
    (void)arg;
    volatile uint64_t *w = (volatile uint64_t *)path_buf;
    while (!stop) {
        *w = flip_a;
        *w = flip_b;
    }
    return NULL;
}

static void set_flip(const char *a, const char *b) {
    char x[8] = {0}, y[8] = {0};
    memcpy(x, a, strlen(a));
    memcpy(y, b, strlen(b));
    memcpy(&flip_a, x, 8);
    memcpy(&flip_b, y, 8);
    memset(path_buf, 0, sizeof path_buf);
    memcpy(path_buf, x, 8);
}

/* Details of the first few leaks, for the report. */
static int leak_reports;

static void describe_leak(const char *what, int fd, const struct stat *got, const struct stat *want) {
    if (leak_reports++ >= 5) return;
    char link[PATH_MAX] = "?", self[64], content[32] = "";
    snprintf(self, sizeof self, fd >= 0 ? "/proc/self/fd/%d" : "/proc/self/cwd", fd);
    ssize_t n = readlink(self, link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    if (fd >= 0 && S_ISREG(got->st_mode)) {
        n = pread(fd, content, sizeof content - 1, 0);
        content[n > 0 ? n : 0] = 0;
        content[strcspn(content, "\n")] = 0;
    }
    fprintf(stderr, "%s: LEAK %s (dev %lx ino %lu mode %o, wanted dev %lx ino %lu) content %s\n",
            what, link, (unsigned long)got->st_dev, (unsigned long)got->st_ino,
            (unsigned)got->st_mode, (unsigned long)want->st_dev, (unsigned long)want->st_ino,
            content);
}

/* The same with a 16-byte path, as two 8-byte stores. */
struct flip16 {
    const char *a, *b;
};

static void *flipper16(void *arg) {
    struct flip16 *s = arg;
    volatile uint64_t *w = (volatile uint64_t *)path_buf;
    uint64_t a0, a1, b0, b1;
    memcpy(&a0, s->a, 8);
    memcpy(&a1, s->a + 8, 8);
    memcpy(&b0, s->b, 8);
    memcpy(&b1, s->b + 8, 8);
    while (!stop) {
        w[0] = a0;
        w[1] = a1;
        w[0] = b0;
        w[1] = b1;
    }
    return NULL;
}

/* The identity of a file as its descriptor tells it: the races compare descriptors with
 * descriptors, and fstat_is_stat says whether stat agrees. */
static int fstat_path(const char *path, struct stat *st) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int r = fstat(fd, st);
    close(fd);
    return r;
}

/* chdir(path_buf) while another thread flips it between "/tmp" and `refused`, a directory
 * the Sentry refuses (where Linux allows it, as natively, it counts as fine, and so do /proc
 * and /proc/1, which a torn read may name). A cwd that the Sentry cannot name afterwards is
 * one it never checked. */
static void chdir_race(const char *refused, const struct stat *tmp, long *chdirs, long *leaks,
                       long *lost) {
    struct stat proc, proc1, target, st;
    char a[16] = "/tmp", b[16] = "";
    strncpy(b, refused, sizeof b - 1);
    fstat_path("/proc", &proc);
    fstat_path("/proc/1", &proc1);
    int allowed = fstat_path(refused, &target) == 0;
    memcpy(path_buf, a, 16);
    stop = 0;
    int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    pthread_t t;
    struct flip16 s = {a, b};
    pthread_create(&t, NULL, flipper16, &s);
    double end = now() + 0.3;
    long unknown = 0;
    while (now() < end) {
        if (chdir(path_buf) < 0) continue;
        ++*chdirs;
        if (fstat_path(".", &st) < 0) {
            if (unknown++ < 2) {
                char link[PATH_MAX] = "";
                ssize_t n = readlink("/proc/self/cwd", link, sizeof link - 1);
                link[n > 0 ? n : 0] = 0;
                fprintf(stderr, "chdir_race %s: open(\".\") %s, /proc/self/cwd -> %s\n",
                        refused, errname(errno), n < 0 ? errname(errno) : link);
            }
        } else if (!(same_file(&st, tmp) || same_file(&st, &proc) || same_file(&st, &proc1) ||
                     (allowed && same_file(&st, &target)))) {
            ++*leaks;
            describe_leak("chdir_race", -1, &st, tmp);
        }
        fchdir(cwd);
    }
    stop = 1;
    pthread_join(t, NULL);
    close(cwd);
    *lost += unknown;
}

static void section_race_open(void) {
    struct stat w, tmp, st;
    close(open("/tmp/w", O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    if (fstat_path("/tmp/w", &w) < 0 || fstat_path("/tmp", &tmp) < 0 || stat("/tmp/w", &st) < 0) {
        fail("race_setup");
        return;
    }
    printf("fstat_is_stat: ok %s\n", same_file(&st, &w) ? "same" : "different");
    pthread_t t;

    /* "/tmp/w" and "/ro/w" as one 8-byte store each: a success must be /tmp/w. */
    set_flip("/tmp/w", "/ro/w");
    stop = 0;
    pthread_create(&t, NULL, flipper, NULL);
    long ok = 0, erofs = 0, leaks = 0;
    leak_reports = 0;
    double end = now() + 1.0;
    for (long i = 0; now() < end || (i < 200000 && (!ok || !erofs) && now() < end + 2); i++) {
        int fd = open(path_buf, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            erofs += errno == EROFS;
            continue;
        }
        ok++;
        if (fstat(fd, &st) < 0 || !same_file(&st, &w)) {
            leaks++;
            describe_leak("open_race", fd, &st, &w);
        }
        close(fd);
    }
    stop = 1;
    pthread_join(t, NULL);
    fprintf(stderr, "open_race: %ld opened, %ld EROFS, %ld leaks\n", ok, erofs, leaks);
    printf("open_race: ok %s\n", leaks ? "LEAK" : "clean");
    printf("open_race_saw_both: ok %s\n", ok && erofs ? "yes" : "no");

    /* O_CREAT between the tmpfs and the read-only volume: nothing is created on the latter. */
    set_flip("/tmp/n", "/ro/n");
    stop = 0;
    pthread_create(&t, NULL, flipper, NULL);
    ok = erofs = leaks = 0;
    leak_reports = 0;
    end = now() + 1.0;
    for (long i = 0; now() < end || (i < 200000 && (!ok || !erofs) && now() < end + 2); i++) {
        int fd = open(path_buf, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            erofs += errno == EROFS;
            continue;
        }
        ok++;
        if (fstat(fd, &st) < 0 || st.st_dev != tmp.st_dev) {
            leaks++;
            describe_leak("creat_race", fd, &st, &tmp);
        }
        close(fd);
    }
    stop = 1;
    pthread_join(t, NULL);
    fprintf(stderr, "creat_race: %ld opened, %ld EROFS, %ld leaks\n", ok, erofs, leaks);
    printf("creat_race: ok %s\n", leaks ? "LEAK" : "clean");
    printf("creat_race_saw_both: ok %s\n", ok && erofs ? "yes" : "no");

    /* chdir between /tmp and a directory the Sentry refuses: the cwd must always be one
     * the Sentry checked, never one the kernel found by reading the path again. */
    long chdirs = 0, lost = 0;
    leaks = 0;
    leak_reports = 0;
    static const char *refused[] = {"/proc/1/cwd", "/tmp/no/such/dir", "/ro/marker"};
    for (unsigned i = 0; i < sizeof refused / sizeof *refused; i++)
        chdir_race(refused[i], &tmp, &chdirs, &leaks, &lost);
    fprintf(stderr, "chdir_race: %ld chdirs, %ld leaks, %ld unknown\n", chdirs, leaks, lost);
    printf("chdir_race: ok %s\n", leaks ? "LEAK" : chdirs ? "clean" : "none");
    printf("chdir_race_cwd_known: ok %s\n", lost ? "no" : "yes");

    /* The kernel's /proc in the guest's view has directories the Sentry's has not (see
     * docs/architecture.md): a chdir raced there may leave a cwd the Sentry cannot name, so
     * that relative paths fail, but nothing outside is ever reached. */
    long extra_chdirs = 0, extra_lost = 0;
    leaks = 0;
    static const char *proc_only[] = {"/proc/tty", "/proc/net", "/proc/bus"};
    for (unsigned i = 0; i < sizeof proc_only / sizeof *proc_only; i++)
        chdir_race(proc_only[i], &tmp, &extra_chdirs, &leaks, &extra_lost);
    fprintf(stderr, "chdir_race_proc_only: %ld chdirs, %ld leaks, %ld unknown\n", extra_chdirs,
            leaks, extra_lost);
    printf("chdir_race_proc_only: ok %s\n", leaks ? "LEAK" : extra_chdirs ? "clean" : "none");
}

/* --- renaming a directory while another thread walks `..` through it ----------------- */

#define KNOWN 8
static struct stat known[KNOWN];
static int nknown;
static volatile long walks, walk_leaks;

static int is_known(const struct stat *st) {
    for (int i = 0; i < nknown; i++)
        if (same_file(st, &known[i])) return 1;
    return 0;
}

static void walk_check(int dirfd, const char *path) {
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st;
    char buf[64] = "";
    fstat(fd, &st);
    if (S_ISDIR(st.st_mode)) {
        if (!is_known(&st)) {
            walk_leaks++;
            describe_leak("rename_race", fd, &st, &known[0]);
        }
    } else {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = 0;
        if (strstr(buf, "HOST-")) {
            walk_leaks++;
            describe_leak("rename_race", fd, &st, &known[0]);
        }
    }
    walks++;
    close(fd);
}

static void *walker(void *arg) {
    int dirfd = *(int *)arg;
    static const char *paths[] = {
        "../secret", "../../secret", "../../../secret", "../../../../secret",
        "../../../../../../../secret", "../marker", "../../marker", "../../../marker",
        "../../../../marker", "..", "../..", "../../..", "../../../..", "../../../../../..",
    };
    while (!stop)
        for (unsigned i = 0; i < sizeof paths / sizeof *paths; i++) walk_check(dirfd, paths[i]);
    return NULL;
}

/* /v/x swaps (RENAME_EXCHANGE) between a directory and symlinks to "../.." and to the host's
 * directory, while opens go through it: each one finds the directory's marker, the root's
 * (through "../.."), or nothing (the host path is not in the sandbox), never a host file. */
static void *swapper(void *arg) {
    (void)arg;
    while (!stop) {
        syscall(SYS_renameat2, AT_FDCWD, "/v/x", AT_FDCWD, "/v/sw_up", 2 /* RENAME_EXCHANGE */);
        syscall(SYS_renameat2, AT_FDCWD, "/v/x", AT_FDCWD, "/v/sw_up", 2);
        syscall(SYS_renameat2, AT_FDCWD, "/v/x", AT_FDCWD, "/v/sw_host", 2);
        syscall(SYS_renameat2, AT_FDCWD, "/v/x", AT_FDCWD, "/v/sw_host", 2);
    }
    return NULL;
}

static void swap_race(void) {
    mkdir("/v/x", 0755);
    int fd = open("/v/x/marker", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    write(fd, "swapdir\n", 8);
    close(fd);
    symlink("../..", "/v/sw_up");
    symlink(host_dir, "/v/sw_host");
    long dir = 0, up = 0, leaks = 0, odd = 0;
    leak_reports = 0;
    pthread_t t;
    stop = 0;
    pthread_create(&t, NULL, swapper, NULL);
    double end = now() + 1.0;
    while (now() < end) {
        /* What each may read: through the directory, or through "../.." (which is "/"). */
        static const char *paths[] = {"/v/x/marker", "/v/x/../secret", "/v/x/../marker",
                                      "/v/x/secret"};
        static const char *allowed[][2] = {{"swapdir", "root"}, {"", "root-secret"},
                                           {"vol", "root"}, {"", "root-secret"}};
        for (int i = 0; i < 4; i++) {
            char buf[64];
            int f = open(paths[i], O_RDONLY | O_CLOEXEC);
            if (f < 0) continue;
            ssize_t n = read(f, buf, sizeof buf - 1);
            close(f);
            buf[n > 0 ? n : 0] = 0;
            buf[strcspn(buf, "\n")] = 0;
            if (!strcmp(buf, allowed[i][0])) dir++;
            else if (!strcmp(buf, allowed[i][1])) up++;
            else if (strstr(buf, "HOST-")) {
                if (leaks++ < 5) fprintf(stderr, "swap_race: %s read %s\n", paths[i], buf);
            } else if (odd++ < 5) {
                fprintf(stderr, "swap_race: %s read %s\n", paths[i], buf);
            }
        }
    }
    stop = 1;
    pthread_join(t, NULL);
    fprintf(stderr, "swap_race: %ld directory, %ld through ../.., %ld leaks, %ld odd\n", dir, up,
            leaks, odd);
    printf("swap_race: ok %s\n", leaks ? "LEAK" : odd ? "ODD" : "clean");
    printf("swap_race_ran: ok %s\n", dir && up ? "yes" : "no");
}

static void section_race_rename(void) {
    mkdir("/v/ra", 0755);
    mkdir("/v/ra/b", 0755);
    mkdir("/v/ra/b/c", 0755);
    const char *dirs[] = {"/", "/v", "/v/ra", "/v/ra/b", "/v/ra/b/c", "/v/sub", "/ro", "/tmp"};
    for (nknown = 0; nknown < KNOWN; nknown++) fstat_path(dirs[nknown], &known[nknown]);
    leak_reports = 0;
    int c = open("/v/ra/b/c", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int b = open("/v/ra/b", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c < 0 || b < 0) {
        fail("rename_race_setup");
        return;
    }
    pthread_t w1, w2;
    stop = 0;
    pthread_create(&w1, NULL, walker, &c);
    pthread_create(&w2, NULL, walker, &b);
    long renames = 0;
    double end = now() + 1.0;
    while (now() < end) {
        renames += rename("/v/ra/b", "/v/b") == 0;
        renames += rename("/v/b", "/v/ra/b") == 0;
        /* Absolute walks too, while the directory is at either depth. */
        walk_check(AT_FDCWD, "/v/ra/b/c/../../../../../secret");
        walk_check(AT_FDCWD, "/v/b/c/../../../../../secret");
        walk_check(AT_FDCWD, "/v/b/c/../../..");
    }
    stop = 1;
    pthread_join(w1, NULL);
    pthread_join(w2, NULL);
    rename("/v/b", "/v/ra/b");
    fprintf(stderr, "rename_race: %ld renames, %ld walks, %ld leaks\n", renames, walks, walk_leaks);
    printf("rename_race: ok %s\n", walk_leaks ? "LEAK" : "clean");
    printf("rename_race_ran: ok %s\n", renames && walks ? "yes" : "no");

    /* The same with the cwd: fchdir into the moving directory, then climb. */
    stop = 0;
    walks = walk_leaks = 0;
    leak_reports = 0;
    fchdir(c);
    static int at_cwd = AT_FDCWD;
    pthread_create(&w1, NULL, walker, &at_cwd);
    end = now() + 0.5;
    while (now() < end) {
        rename("/v/ra/b", "/v/b");
        rename("/v/b", "/v/ra/b");
    }
    stop = 1;
    pthread_join(w1, NULL);
    rename("/v/b", "/v/ra/b");
    fprintf(stderr, "rename_race_cwd: %ld walks, %ld leaks\n", walks, walk_leaks);
    printf("rename_race_cwd: ok %s\n", walk_leaks ? "LEAK" : "clean");
    chdir("/");
    swap_race();
}

/* --- openat2 ------------------------------------------------------------------------- */

static void section_openat2(void) {
    char p[PATH_MAX];
    /* Plain descriptors: O_PATH ones have their own section. */
    int sub = open("/v/sub", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int self = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int vol = open("/v/marker", O_RDONLY | O_CLOEXEC);
    show2("beneath_inside", sub, "d/../marker", RESOLVE_BENEATH);
    show2("beneath_inside_link", sub, "link_in", RESOLVE_BENEATH);
    show2("beneath_dotdot", sub, "../marker", RESOLVE_BENEATH);
    show2("beneath_dotdot_back", sub, "../sub/marker", RESOLVE_BENEATH);
    show2("beneath_abs", sub, "/marker", RESOLVE_BENEATH);
    show2("beneath_abs_link", sub, "link_abs", RESOLVE_BENEATH);
    show2("beneath_up_link", sub, "link_up", RESOLVE_BENEATH);
    show2("beneath_host_link", sub, "host_abs", RESOLVE_BENEATH);
    show2("beneath_magic", self, "root/marker", RESOLVE_BENEATH);
    show2("in_root_dotdot", sub, "../../../marker", RESOLVE_IN_ROOT);
    show2("in_root_abs", sub, "/marker", RESOLVE_IN_ROOT);
    show2("in_root_abs_dotdot", sub, "/../../d/../marker", RESOLVE_IN_ROOT);
    show2("in_root_abs_link", sub, "link_abs", RESOLVE_IN_ROOT);
    show2("in_root_up_link", sub, "link_up", RESOLVE_IN_ROOT);
    show2("in_root_host_link", sub, "host_abs", RESOLVE_IN_ROOT);
    show2("in_root_magic", self, "root/marker", RESOLVE_IN_ROOT);
    show2("no_symlinks_mid", AT_FDCWD, "/v/slash/marker", RESOLVE_NO_SYMLINKS);
    show2("no_symlinks_last", sub, "link_in", RESOLVE_NO_SYMLINKS);
    show2("no_symlinks_plain", sub, "marker", RESOLVE_NO_SYMLINKS);
    snprintf(p, sizeof p, "/proc/self/fd/%d", vol);
    show2("no_magiclinks_fd", AT_FDCWD, p, RESOLVE_NO_MAGICLINKS);
    show2("magiclinks_fd", AT_FDCWD, p, 0);
    show2("no_magiclinks_root", AT_FDCWD, "/proc/self/root/marker", RESOLVE_NO_MAGICLINKS);
    show2("no_magiclinks_cwd", AT_FDCWD, "/proc/self/cwd/marker", RESOLVE_NO_MAGICLINKS);
    show2("no_magiclinks_ordinary", AT_FDCWD, "/v/rel_out", RESOLVE_NO_MAGICLINKS);
    show2("no_xdev_into_vol", AT_FDCWD, "/v/marker", RESOLVE_NO_XDEV);
    show2("no_xdev_dotdot", sub, "../../marker", RESOLVE_NO_XDEV);
    show2("no_xdev_inside", sub, "../marker", RESOLVE_NO_XDEV);
    show2("bad_resolve", sub, "marker", 0x40);
    show2("beneath_and_in_root", sub, "marker", RESOLVE_BENEATH | RESOLVE_IN_ROOT);
    result("chdir_vol_sub", chdir("/v/sub"));
    show2("in_root_cwd", AT_FDCWD, "../../../marker", RESOLVE_IN_ROOT);
    show2("beneath_cwd", AT_FDCWD, "../marker", RESOLVE_BENEATH);
    close(sub);
    close(self);
    close(vol);
}

/* --- O_PATH descriptors -------------------------------------------------------------- */

static void section_opath(void) {
    int sub = open("/v/sub", O_PATH | O_DIRECTORY | O_CLOEXEC);
    show_at("opath_up1", sub, "../marker");
    show_at("opath_dotdot", sub, "../../../../marker");
    show_at("opath_secret", sub, "../../../../secret");
    same_dir("opath_fstatat_root", sub, "../..", "/");
    same_dir("opath_fstatat_many", sub, "../../../../../..", "/");
    result("opath_fchdir", fchdir(sub));
    show_cwd("opath_getcwd");
    show("opath_rel_marker", "marker");
    show("opath_rel_secret", "../../../../../secret");
    int file = open("/v/marker", O_PATH | O_CLOEXEC);
    result("opath_file_fchdir", fchdir(file));
    show_at("opath_file_openat", file, "x");
    {
        char c;
        result("opath_read", read(file, &c, 1));
    }
    int ro = open("/ro", O_PATH | O_DIRECTORY | O_CLOEXEC);
    {
        int fd = openat(ro, "new", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0) fail("opath_ro_create");
        else { printf("opath_ro_create: ok CREATED\n"); close(fd); }
        fd = openat(ro, "w", O_RDWR | O_CLOEXEC);
        if (fd < 0) fail("opath_ro_rdwr");
        else { printf("opath_ro_rdwr: ok WRITABLE\n"); close(fd); }
        fd = openat(ro, "../v/marker", O_RDWR | O_CLOEXEC);
        if (fd < 0) fail("opath_ro_to_vol_rdwr");
        else { show_fd("opath_ro_to_vol_rdwr", fd); close(fd); }
    }
    result("opath_ro_mkdir", mkdirat(ro, "d", 0755));
    result("opath_ro_unlink", unlinkat(ro, "w", 0));
    int link = open("/v/rel_out", O_PATH | O_NOFOLLOW | O_CLOEXEC);
    {
        char buf[PATH_MAX];
        ssize_t n = readlinkat(link, "", buf, sizeof buf - 1);
        if (n < 0) fail("opath_symlink_readlink");
        else { buf[n] = 0; printf("opath_symlink_readlink: ok %s\n", buf); }
    }
    int root = open("/proc/self/root", O_PATH | O_DIRECTORY | O_CLOEXEC);
    show_at("opath_proc_root", root, "../secret");
    int v = open("/v", O_PATH | O_DIRECTORY | O_CLOEXEC);
    result("opath_fchdir_vol", fchdir(v));
    result("opath_fchdir_vol_up", chdir(".."));
    show_cwd("opath_fchdir_vol_up_cwd");
    show("opath_fchdir_vol_up_marker", "marker");
    close(sub);
    close(file);
    close(ro);
    close(link);
    close(root);
    close(v);
}

/* --- chroot: not a boundary by itself, but nothing climbs past the sandbox's root ------- */

static void section_chroot(void) {
    char p[PATH_MAX];
    result("chdir_root", chdir("/"));
    result("chroot_vol", chroot("/v"));
    show("chroot_cwd_outside", "secret");
    show("chroot_cwd_outside_up", "../../secret");
    show("chroot_abs", "/marker");
    show("chroot_abs_dotdot", "/../../marker");
    result("chroot_chdir", chdir("/"));
    show_cwd("chroot_cwd");
    show("chroot_rel_dotdot", "../../marker");
    result("chroot_mkdir_jail", mkdir("/jail", 0755));
    result("chroot_jail", chroot("/jail"));
    for (int i = 0; i < 10; i++) chdir("..");
    result("chroot_dot", chroot("."));
    show("chroot_double_secret", "/secret");
    show("chroot_double_marker", "/marker");
    host_path(p, "/secret");
    show("chroot_double_host", p);
    show("chroot_double_dotdot", "/../../../../secret");
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc != 3) {
        fprintf(stderr, "usage: fs_escape SECTION HOST_DIR\n");
        return 2;
    }
    host_dir = argv[2];
    static const struct {
        const char *name;
        void (*run)(void);
    } sections[] = {
        {"dotdot", section_dotdot}, {"symlinks", section_symlinks}, {"proc", section_proc},
        {"proc_scan", section_proc_scan}, {"sentry", section_sentry},
        {"hardlinks", section_hardlinks}, {"race_open", section_race_open},
        {"race_rename", section_race_rename}, {"openat2", section_openat2},
        {"opath", section_opath}, {"chroot", section_chroot},
    };
    for (unsigned i = 0; i < sizeof sections / sizeof *sections; i++)
        if (!strcmp(argv[1], sections[i].name)) {
            sections[i].run();
            return 0;
        }
    fprintf(stderr, "fs_escape: unknown section %s\n", argv[1]);
    return 2;
}
