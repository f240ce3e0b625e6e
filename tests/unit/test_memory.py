"""Guest memory through process_vm_readv/writev, on this very process: page edges and faults."""

import ctypes
import errno
import mmap
import os

import pytest
from hypothesis import given, settings, strategies as st

from edgevisor.platform.memory import PAGE_SIZE, ProcessMemory


@pytest.fixture(scope="module")
def region():
    """Two readable pages followed by an unmapped one: [base, base + 2 pages)."""
    m = mmap.mmap(-1, 3 * PAGE_SIZE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(m))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    assert libc.munmap(base + 2 * PAGE_SIZE, PAGE_SIZE) == 0
    yield m, base


def place(m, offset: int, data: bytes) -> None:
    m[offset:offset + len(data)] = data


def test_read_and_write(region):
    m, base = region
    mem = ProcessMemory(os.getpid())
    place(m, 100, b"hello")
    assert mem.read(base + 100, 5) == b"hello"
    mem.write(base + 200, b"world")
    assert m[200:205] == b"world"


def test_read_across_into_unmapped_page_is_efault(region):
    m, base = region
    mem = ProcessMemory(os.getpid())
    end = base + 2 * PAGE_SIZE
    assert mem.read(end - 8, 8) is not None
    with pytest.raises(OSError) as e:
        mem.read(end - 8, 9)
    assert e.value.errno == errno.EFAULT
    with pytest.raises(OSError) as e:
        mem.write(end - 4, b"12345")
    assert e.value.errno == errno.EFAULT


@pytest.mark.parametrize("addr", [0, -1])
def test_null_and_negative_addresses_fault(addr):
    mem = ProcessMemory(os.getpid())
    for call in (lambda: mem.read(addr, 1), lambda: mem.read_cstring(addr, 10),
                 lambda: mem.write(addr, b"x")):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.EFAULT


@settings(max_examples=200)
@given(text=st.binary(max_size=300).filter(lambda b: b"\0" not in b),
       gap=st.integers(min_value=1, max_value=400))
def test_cstring_ending_anywhere_before_the_unmapped_page(region, text, gap):
    """A string whose NUL is the last mapped byte, or anywhere before it, reads exactly; one
    that runs into the unmapped page without a NUL faults."""
    m, base = region
    mem = ProcessMemory(os.getpid())
    end = 2 * PAGE_SIZE
    start = end - len(text) - 1 - (gap - 1)
    place(m, start, text + b"\0")
    assert mem.read_cstring(base + start, 4096) == text
    place(m, end - len(text) - 1, text + b"x")
    with pytest.raises(OSError) as e:
        mem.read_cstring(base + end - len(text) - 1, 4096)
    assert e.value.errno == errno.EFAULT


def test_cstring_too_long(region):
    m, base = region
    mem = ProcessMemory(os.getpid())
    place(m, 0, b"a" * 50 + b"\0")
    with pytest.raises(OSError) as e:
        mem.read_cstring(base, 10)
    assert e.value.errno == errno.ENAMETOOLONG
    assert mem.read_cstring(base, 51) == b"a" * 50


def test_validate_runs_after_reads_and_before_writes(region):
    m, base = region
    calls = []
    mem = ProcessMemory(os.getpid(), lambda: calls.append("valid"))
    place(m, 0, b"ab\0")
    mem.read(base, 2)
    mem.read_cstring(base, 10)
    mem.write(base + 10, b"x")
    assert calls == ["valid"] * 3


def test_a_notification_that_went_stale_aborts_the_read(region):
    m, base = region

    def stale():
        raise OSError(errno.ENOENT, "notification no longer valid")

    with pytest.raises(OSError) as e:
        ProcessMemory(os.getpid(), stale).read(base, 1)
    assert e.value.errno == errno.ENOENT
