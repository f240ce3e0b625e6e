# The C helper is built by cffi at install time; everything else is in pyproject.toml.
from setuptools import setup

setup(cffi_modules=["edgevisor/platform/notify_build.py:ffibuilder"])
