"""Images without a registry: root file systems made from the host's files, `docker import`ed.

- busybox: /bin/busybox (Debian's busybox-static) and a link per applet, an /etc/passwd with
  root and a user 1000.
- python3: the same, plus the host's /usr/bin/python3 with its standard library and the
  shared libraries it and its extension modules load."""

import io
import os
import subprocess
import tarfile
from pathlib import Path

BUSYBOX = "/bin/busybox"
PYTHON = "/usr/bin/python3"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSWD = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n"
GROUP = "root:x:0:\nuser:x:1000:\n"
# Parts of the standard library no container case runs (and config-*, for building
# extensions): they only make the image bigger.
STDLIB_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data"}


def busybox_tar(out: Path) -> Path:
    with tarfile.open(out, "w") as tar:
        _add_busybox(tar)
    return out


def python_tar(out: Path) -> Path:
    python = os.path.realpath(PYTHON)
    stdlib = Path(subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
        capture_output=True, text=True, check=True).stdout.strip())
    with tarfile.open(out, "w") as tar:
        _add_busybox(tar)
        _add_file(tar, python, python)
        tar.add(stdlib, arcname=str(stdlib).lstrip("/"), filter=_skip_stdlib_extras)
        if PYTHON != python:
            _add_symlink(tar, PYTHON, python)
        binaries = [python, *map(str, (stdlib / "lib-dynload").glob("*.so"))]
        for library in _shared_libraries(binaries):
            _add_file(tar, library, os.path.realpath(library))
    return out


def docker_import(daemon, tar: Path, tag: str) -> str:
    # An imported image has no configuration: without a PATH, docker finds no command.
    daemon.docker("import", "--change", f"ENV PATH={PATH}", str(tar), tag, timeout=300)
    return tag


def _add_busybox(tar):
    tar.added = set()
    for directory in ("bin", "etc", "tmp", "proc", "sys", "dev", "root", "home/user", "var"):
        info = tarfile.TarInfo(directory)
        info.type = tarfile.DIRTYPE
        info.mode = 0o1777 if directory == "tmp" else 0o755
        if directory == "home/user":
            info.uid = info.gid = 1000
        tar.addfile(info)
    _add_file(tar, "/bin/busybox", BUSYBOX)
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type = tarfile.LNKTYPE  # hard links: one copy of busybox in the layer
            info.linkname = "bin/busybox"
            info.mode = 0o755  # a hard link's mode is its inode's: the extractor applies it
            tar.addfile(info)
    for name, text in (("etc/passwd", PASSWD), ("etc/group", GROUP)):
        data = text.encode()
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))


def _add_file(tar, path_in_image, host_path):
    name = path_in_image.lstrip("/")
    if name in tar.added:
        return
    tar.added.add(name)
    tar.add(host_path, arcname=name, recursive=False)


def _add_symlink(tar, path_in_image, target):
    info = tarfile.TarInfo(path_in_image.lstrip("/"))
    info.type = tarfile.SYMTYPE
    info.linkname = target
    tar.addfile(info)


def _skip_stdlib_extras(info):
    parts = Path(info.name).parts
    if any(p in STDLIB_SKIP or p.startswith("config-") for p in parts) \
            or "site-packages" in parts:
        return None
    return info


def _shared_libraries(binaries):
    """Every library (and the loader) that ldd names for these binaries, as ldd names it."""
    found = set()
    for binary in binaries:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
        for line in out.splitlines():
            words = line.split()
            if "=>" in words and len(words) > 2 and words[2].startswith("/"):
                found.add(words[2])
            elif words and words[0].startswith("/"):
                found.add(words[0])
    return sorted(found)
