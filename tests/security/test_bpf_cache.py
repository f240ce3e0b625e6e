"""Poisoning the cache of compiled seccomp programs: an allow-all program planted where the
next sandbox would look for its guest's and its Sentry's filters, in a cache directory any
user could write to. The sandbox must compile its own filters, mediate the guest as ever,
and leave the planted files alone (unit tests: tests/unit/test_bpf_cache.py)."""

import os

from edgevisor import abi
from edgevisor.platform import bpf_cache, get_platform
from edgevisor.syscall_tables import load

ALLOW_ALL = abi.SOCK_FILTER.pack(abi.BPF_RET_K, 0, 0, abi.SECCOMP_RET_ALLOW)


def test_planted_allow_all_filters_are_not_loaded(sandbox, platform):
    # Under /var/tmp: the Sentry has a /tmp of its own.
    cache = os.path.join("/var/tmp", f"edgevisor-bpf-attack-{os.getpid()}-{platform}")
    os.mkdir(cache)
    try:
        os.chmod(cache, 0o777)  # anyone may write here: the attacker did
        trap = get_platform(platform).trap
        planted = [bpf_cache.key("guest", (bpf_cache.table_digest(load()), trap, ())),
                   bpf_cache.key("sentry", (platform, "sandbox", False))]
        for name in planted:
            with open(os.path.join(cache, name), "wb") as f:
                f.write(ALLOW_ALL)
        env = {**os.environ, "EDGEVISOR_BPF_CACHE": cache}
        # The in-memory overlay answers this write only while the Sentry mediates the guest.
        r = sandbox("sh", "-c", "echo mediated > /probe && cat /probe", env=env)
        assert (r.returncode, r.stdout) == (0, "mediated\n"), r.stderr
        assert sorted(os.listdir(cache)) == sorted(planted)
        for name in planted:
            with open(os.path.join(cache, name), "rb") as f:
                assert f.read() == ALLOW_ALL
        assert not os.path.exists("/probe")
    finally:
        for name in os.listdir(cache):
            os.unlink(os.path.join(cache, name))
        os.rmdir(cache)
