"""The cache of compiled seccomp programs trusts an entry only as far as the code that would
have built it: anything another user could have written is compiled afresh instead."""

import os

import pytest

from edgevisor import abi
from edgevisor.platform import bpf_cache

REAL = abi.SOCK_FILTER.pack(abi.BPF_RET_K, 0, 0, abi.SECCOMP_RET_KILL_PROCESS) * 2
# What an attacker would plant: one instruction allowing everything.
ALLOW_ALL = abi.SOCK_FILTER.pack(abi.BPF_RET_K, 0, 0, abi.SECCOMP_RET_ALLOW)
INPUTS = ("table-digest", 1)
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give files away")


class Compiler:
    def __init__(self):
        self.calls = 0

    def __call__(self) -> bytes:
        self.calls += 1
        return REAL


@pytest.fixture
def cache(tmp_path, monkeypatch):
    top = tmp_path / "top"
    top.mkdir(mode=0o755)
    os.chmod(tmp_path, 0o755)
    where = top / "cache"
    monkeypatch.setenv("EDGEVISOR_BPF_CACHE", str(where))
    return where


def entry(cache):
    return cache / bpf_cache.key("guest", INPUTS)


def test_a_trusted_entry_saves_the_compile(cache):
    first, second = Compiler(), Compiler()
    assert bpf_cache.program("guest", INPUTS, first) == REAL
    assert bpf_cache.program("guest", INPUTS, second) == REAL
    assert (first.calls, second.calls) == (1, 0)
    st = os.stat(entry(cache))
    assert st.st_uid == os.geteuid() and not st.st_mode & 0o022


def test_other_inputs_are_another_entry(cache):
    bpf_cache.program("guest", INPUTS, Compiler())
    again = Compiler()
    bpf_cache.program("guest", ("table-digest", 2), again)
    assert again.calls == 1


def test_off_compiles_and_writes_nothing(cache, monkeypatch):
    monkeypatch.setenv("EDGEVISOR_BPF_CACHE", "off")
    compiler = Compiler()
    assert bpf_cache.program("guest", INPUTS, compiler) == REAL
    assert compiler.calls == 1 and not cache.exists()


def _writable_by_others(path):
    os.chmod(path, 0o666)


def _hard_linked(path):
    os.link(path, str(path) + ".other-name")


def _symlinked(path):
    planted = path.parent.parent / "planted.bpf"
    planted.write_bytes(ALLOW_ALL)
    os.unlink(path)
    os.symlink(planted, path)


def _fifo(path):
    os.unlink(path)
    os.mkfifo(path, 0o644)


def _torn(path):
    path.write_bytes(ALLOW_ALL[:5])


def _too_long(path):
    path.write_bytes(ALLOW_ALL * (abi.BPF_MAXINSNS + 1))


def _owned_by_another_user(path):
    os.chown(path, 65534, 65534)


@pytest.mark.parametrize("spoil", [_writable_by_others, _hard_linked, _symlinked, _fifo, _torn,
                                   _too_long, pytest.param(_owned_by_another_user, marks=root_only)])
def test_an_untrusted_entry_is_compiled_afresh_and_replaced(cache, spoil):
    bpf_cache.program("guest", INPUTS, Compiler())
    path = entry(cache)
    path.write_bytes(ALLOW_ALL)
    spoil(path)
    compiler = Compiler()
    assert bpf_cache.program("guest", INPUTS, compiler) == REAL
    assert compiler.calls == 1
    assert not path.is_symlink() and path.read_bytes() == REAL
    assert os.stat(path).st_nlink == 1 and not os.stat(path).st_mode & 0o022


def _dir_writable_by_others(cache):
    os.chmod(cache, 0o777)


def _parent_writable_by_others(cache):
    os.chmod(cache.parent, 0o777)


def _dir_owned_by_another_user(cache):
    os.chown(cache, 65534, 65534)


@pytest.mark.parametrize("spoil", [_dir_writable_by_others, _parent_writable_by_others,
                                   pytest.param(_dir_owned_by_another_user, marks=root_only)])
def test_an_untrusted_directory_is_neither_read_nor_written(cache, spoil):
    cache.mkdir(mode=0o755)
    path = entry(cache)
    path.write_bytes(ALLOW_ALL)
    spoil(cache)
    before = sorted(os.listdir(cache))
    compiler = Compiler()
    assert bpf_cache.program("guest", INPUTS, compiler) == REAL
    assert compiler.calls == 1
    assert path.read_bytes() == ALLOW_ALL and sorted(os.listdir(cache)) == before


def test_a_sticky_parent_keeps_our_own_directory_trusted(cache):
    os.chmod(cache.parent, 0o1777)  # as /tmp: others cannot move what we own
    bpf_cache.program("guest", INPUTS, Compiler())
    again = Compiler()
    bpf_cache.program("guest", INPUTS, again)
    assert again.calls == 0


def test_a_symlinked_directory_is_not_used(cache, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    os.symlink(elsewhere, cache)
    compiler = Compiler()
    assert bpf_cache.program("guest", INPUTS, compiler) == REAL
    assert compiler.calls == 1 and os.listdir(elsewhere) == []


def test_entries_of_older_code_are_removed_when_a_new_one_is_written(cache):
    cache.mkdir(mode=0o755)
    older = cache / "guest-0000000000000000-00.bpf"
    other = cache / "sentry-0000000000000000-00.bpf"
    older.write_bytes(REAL)
    other.write_bytes(REAL)
    bpf_cache.program("guest", INPUTS, Compiler())
    assert sorted(os.listdir(cache)) == sorted([entry(cache).name, other.name])
