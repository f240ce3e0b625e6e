"""The Sentry's network namespace.

The guest's sockets are host kernel sockets in a network namespace of the guest's own, which
holds only `lo` (127.0.0.1/8 and ::1): loopback TCP, UDP and unix sockets, netlink dumps and
the SIOCGIF* ioctls are the kernel's, at native speed, and nothing in that namespace routes to
the host or beyond. The Sentry owns what crosses that line and what the guest may ask of the
kernel:

- policy.py: which families, types, protocols and socket options a socket may have, decided
  on register arguments before the kernel sees the call;
- stack.py: the network mode, and with --network=host the IP and netlink sockets the Sentry
  makes itself in the host's namespace and installs in the guest;
- publish.py: -p, a process that carries connections from host ports to guest listeners.
"""

MODES = ("sandbox", "none", "host")  # --network
