"""edgevisor: a gVisor-style user-space kernel sandbox for Linux."""

__version__ = "0.1.0"
