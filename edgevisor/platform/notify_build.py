"""Builds edgevisor.platform._notify, the seccomp platform's C hot path and the guest memory
accessor both platforms use (see c/notify.c).

Run by setuptools through `cffi_modules` at install time."""

from pathlib import Path

from cffi import FFI

ffibuilder = FFI()
ffibuilder.cdef("""
    struct ev_notif { uint64_t id; int32_t tid; int32_t nr; uint64_t args[6]; };
    int ev_next(int listener, struct ev_notif *out);
    int ev_send(int listener, uint64_t id, int64_t val, int32_t error, uint32_t flags);
    int ev_remember(int32_t tid, int pidfd, int32_t nr, int64_t value);
    void ev_set_memo(const int32_t *nrs, int n);
    long ev_read(int32_t tid, uint64_t addr, char *buf, size_t n);
    long ev_write(int32_t tid, uint64_t addr, const char *buf, size_t n);
    long ev_read_cstring(int32_t tid, uint64_t addr, char *buf, size_t max, size_t page);
    void ev_forget_trust(void);
    void ev_self_trust(int on);
    uint64_t ev_mnt_id(int fd);
    void ev_view_on(int root, int proc, const uint64_t *mnt_ids, int n, long page);
    void ev_view_off(void);
    int ev_view_prefix(const char *path, int fd, uint64_t mnt_id);
    int ev_view_covered(uint64_t dev, uint64_t ino, uint64_t mnt_id, const char *path);
    void ev_set_uts(const char *buf, size_t n);
""")
ffibuilder.set_source(
    "edgevisor.platform._notify",
    (Path(__file__).parent / "c" / "notify.c").read_text(),
    extra_compile_args=["-O2", "-Wall", "-Wextra"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
