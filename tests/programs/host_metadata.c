/* Tries, as the guest's root, to turn a file the host shares into host privilege: set-id
 * bits and file capabilities by every path, descriptor and creation call, and metadata
 * changes on descriptors the front end handed. One section per run; each check reports
 * `name: ok` or `name: ERRNO` on stderr (stdout may be the file under attack).
 *
 *   host_metadata volume DIR    a rw volume (or, for comparison, a private mount)
 *   host_metadata stdout        fd 1 is the user's `> out`
 *   host_metadata anon          the guest's own pipes and memfds
 *   host_metadata race FILE     fchmod of fd 5 while another thread swaps it between FILE
 *                               and the handed fd 1: the check and the change must be one */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "oracle.h"

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

/* To stderr: stdout is the handed file under attack. */
static void report(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsay_to(2, fmt, ap);
    va_end(ap);
}

static void check(const char *name, long rc) {
    if (rc < 0) report("%s: %s", name, strerrorname_np(errno));
    else report("%s: ok", name);
}

/* vfs_cap_data, revision 2: CAP_SETUID permitted and effective. */
static const uint32_t CAP_SETUID_XATTR[5] = {0x02000001, 1u << 7, 0, 0, 0};
static const char ELF[] = "\x7f" "ELF\2\1\1 not really a program, but the host cannot tell";

static void mode_of(const char *name, const char *path) {
    struct stat st;
    if (stat(path, &st) < 0) report("%s: %s", name, strerrorname_np(errno));
    else report("%s: %04o", name, st.st_mode & 07777);
}

static void volume(const char *dir) {
    char bin[4096], p[4096];
    if (chdir(dir) < 0) { report("chdir: %s", strerrorname_np(errno)); exit(1); }
    snprintf(bin, sizeof bin, "%s/bin", dir);
    int fd = open("bin", O_CREAT | O_RDWR | O_TRUNC, 0755);
    check("write_elf", fd < 0 ? -1 : write(fd, ELF, sizeof ELF));
    check("chown_root", chown("bin", 0, 0));
    /* The attacks: a setuid-root or cap_setuid program on the host. */
    check("chmod_suid", chmod("bin", 04755));
    check("chmod_sgid", chmod("bin", 02755));
    check("fchmodat_suid", fchmodat(AT_FDCWD, "bin", 04755, 0));
    check("fchmodat2_suid", syscall(SYS_fchmodat2, AT_FDCWD, "bin", 04755, 0));
    check("fchmodat2_empty", syscall(SYS_fchmodat2, fd, "", 04755, AT_EMPTY_PATH));
    check("fchmod_suid", fchmod(fd, 04755));
    check("fchmod_sgid", fchmod(fd, 02711));
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    check("procfd_chmod_suid", chmod(p, 04755));
    int opath = open("bin", O_PATH);
    check("opath_fchmodat2_suid", syscall(SYS_fchmodat2, opath, "", 04755, AT_EMPTY_PATH));
    check("setxattr_cap", setxattr("bin", "security.capability", CAP_SETUID_XATTR,
                                   sizeof CAP_SETUID_XATTR, 0));
    check("lsetxattr_cap", lsetxattr("bin", "security.capability", CAP_SETUID_XATTR,
                                     sizeof CAP_SETUID_XATTR, 0));
    check("fsetxattr_cap", fsetxattr(fd, "security.capability", CAP_SETUID_XATTR,
                                     sizeof CAP_SETUID_XATTR, 0));
    check("procfd_setxattr_cap", setxattr(p, "security.capability", CAP_SETUID_XATTR,
                                          sizeof CAP_SETUID_XATTR, 0));
    check("fsetxattr_trusted", fsetxattr(fd, "trusted.x", "1", 1, 0));
    check("fremovexattr_security", fremovexattr(fd, "security.selinux"));
    check("removexattr_security", removexattr("bin", "security.selinux"));
    mode_of("mode_bin", "bin");
    /* Creation: the bits are stripped, the file is made. */
    int c = open("created", O_CREAT | O_WRONLY, 06755);
    check("open_creat_suid", c);
    mode_of("mode_created", "created");
    check("creat_suid", creat("creat", 04711));
    mode_of("mode_creat", "creat");
    check("mknod_suid", mknod("mknod", S_IFREG | 04755, 0));
    mode_of("mode_mknod", "mknod");
    int tmp = open(".", O_TMPFILE | O_WRONLY, 04755);
    check("tmpfile_suid", tmp);
    if (tmp >= 0) {
        struct stat st;
        fstat(tmp, &st);
        report("mode_tmpfile: %04o", st.st_mode & 07777);
    }
    check("mkdir_sgid", mkdir("sgid", 02775));
    mode_of("mode_sgid_dir", "sgid");  /* a directory's S_ISGID only passes its group on */
    check("chmod_dir_sgid", chmod("sgid", 02770));
    mode_of("mode_sgid_dir2", "sgid");
    /* chown of a set-id file the host made: the kernel clears the bits. */
    check("chown_setuid_file", chown("hostsuid", 0, 0));
    mode_of("mode_hostsuid", "hostsuid");
    /* Ordinary changes keep working. */
    check("chmod", chmod("bin", 0700));
    check("fchmod", fchmod(fd, 0750));
    check("fchmodat2_empty_plain", syscall(SYS_fchmodat2, fd, "", 0751, AT_EMPTY_PATH));
    mode_of("mode_bin_after", "bin");
    check("chown", chown("created", 1234, 4321));
    check("fchown", fchown(fd, 1234, 4321));
    check("setxattr_user", setxattr("bin", "user.a", "1", 1, 0));
    check("fsetxattr_user", fsetxattr(fd, "user.b", "22", 2, 0));
    check("fremovexattr_user", fremovexattr(fd, "user.a"));
    struct timespec times[2] = {{1000000000, 0}, {1000000000, 0}};
    check("futimens", futimens(fd, times));
}

static void standard_output(void) {
    struct timespec times[2] = {{981173106, 0}, {981173106, 0}};
    check("write", write(1, ELF, sizeof ELF));
    check("fchown", fchown(1, 0, 0));
    check("fchmod", fchmod(1, 0755));
    check("fchmod_suid", fchmod(1, 04755));
    check("fchmodat2_empty", syscall(SYS_fchmodat2, 1, "", 0755, AT_EMPTY_PATH));
    check("fchownat_empty", fchownat(1, "", 0, 0, AT_EMPTY_PATH));
    check("fsetxattr_cap", fsetxattr(1, "security.capability", CAP_SETUID_XATTR,
                                     sizeof CAP_SETUID_XATTR, 0));
    check("fsetxattr_user", fsetxattr(1, "user.x", "1", 1, 0));
    check("fremovexattr_user", fremovexattr(1, "user.keep"));
    check("futimens", futimens(1, times));
    check("utimensat_null", syscall(SYS_utimensat, 1, NULL, times, 0));
    check("procfd_chmod", chmod("/proc/self/fd/1", 0755));
    check("procfd_chown", chown("/proc/self/fd/1", 0, 0));
    check("procfd_setxattr_cap", setxattr("/proc/self/fd/1", "security.capability",
                                          CAP_SETUID_XATTR, sizeof CAP_SETUID_XATTR, 0));
    int dup = open("/dev/stdout", O_WRONLY);
    check("reopen", dup);
    check("reopen_fchmod", fchmod(dup, 0755));
    check("reopen_fchown", fchown(dup, 0, 0));
    /* I/O keeps working. */
    check("ftruncate", ftruncate(1, 4));
    check("lseek", lseek(1, 0, SEEK_END));
    check("write_after", write(1, "tail", 4));
    check("fsync", fsync(1));
}

static void anonymous(void) {
    int p[2];
    check("pipe", pipe(p));
    check("pipe_fchmod", fchmod(p[0], 0600));
    int m = memfd_create("m", 0);
    check("memfd_fchmod", fchmod(m, 04755));
    check("memfd_write", write(m, "x", 1));
}

static volatile int stop, swapping;

static void *swapper(void *arg) {
    int own = *(int *)arg;
    while (!stop) {
        swapping = 1;
        dup2(1, 5);
        dup2(own, 5);
    }
    return NULL;
}

static void race(const char *own_path) {
    int own = open(own_path, O_CREAT | O_RDWR, 0644), ok = 0, refused = 0, other = 0;
    pthread_t thread;
    if (own < 0 || dup2(own, 5) < 0) { report("race: setup %s", strerrorname_np(errno)); exit(1); }
    pthread_create(&thread, NULL, swapper, &own);
    while (!swapping)
        ;
    for (int i = 0; i < 3000; i++) {
        if (fchmod(5, 0755) == 0) ok++;
        else if (errno == EPERM) refused++;
        else other++;
    }
    stop = 1;
    pthread_join(thread, NULL);
    report("race: ok=%d refused=%d other=%d", ok, refused, other);
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "volume")) volume(argv[2]);
    else if (argc == 2 && !strcmp(argv[1], "stdout")) standard_output();
    else if (argc == 2 && !strcmp(argv[1], "anon")) anonymous();
    else if (argc == 3 && !strcmp(argv[1], "race")) race(argv[2]);
    else { report("usage: host_metadata volume DIR | stdout | anon | race FILE"); return 2; }
    return 0;
}
