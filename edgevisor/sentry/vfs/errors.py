"""The one way VFS code fails: an OSError carrying the errno the guest will see."""

import os


def error(code: int) -> OSError:
    return OSError(code, os.strerror(code))
