"""`@NAME`: a unix socket in Linux's abstract namespace, as uWSGI writes one
(it reads `\\0NAME`, a backslash and a zero, as the same).

Such a socket has no file: nothing to remove before binding it, to chmod,
chown or vacuum.  uWSGI's address for it counts the name's terminating
NUL, so the kernel knows it as NUL, NAME, NUL; ugu binds and connects to
the same bytes, so that its sockets and uWSGI's (a stats server, a node
of the router, `--connect-and-read`) find each other.
"""

from ugu import log

# What starts such an address: `@`, or a backslash and a zero.
PREFIXES = ("@", "\\0")


def is_abstract(address):
    return address.startswith(PREFIXES)


def sockaddr(address):
    """What to bind or connect to for `address`: a path as it is."""
    for prefix in PREFIXES:
        if address.startswith(prefix):
            return f"\0{address[len(prefix):]}\0"
    return address


def announce():
    """uWSGI's line before it binds one."""
    log.log("setting abstract socket mode (warning: only Linux supports "
            "this)")
