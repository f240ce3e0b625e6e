"""Run last in the docker tests (file order): every container the cases made is gone, with
all it held on the host. The session fixture then checks the daemons left nothing either."""


def test_no_container_residue(daemon):
    assert daemon.container_residue() == []
