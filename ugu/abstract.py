"""`@NAME`: a unix socket in Linux's abstract namespace, as uWSGI writes one.

Such a socket has no file: nothing to remove before binding it, to chmod,
chown or vacuum.  uWSGI's address for it counts the name's terminating
NUL, so the kernel knows it as NUL, NAME, NUL; ugu binds and connects to
the same bytes, so that its sockets and uWSGI's (a stats server, a node
of the router, `--connect-and-read`) find each other.
"""

from ugu import log


def is_abstract(address):
    return address.startswith("@")


def sockaddr(address):
    """What to bind or connect to for `address`: a path as it is."""
    return f"\0{address[1:]}\0" if is_abstract(address) else address


def announce():
    """uWSGI's line before it binds one."""
    log.log("setting abstract socket mode (warning: only Linux supports "
            "this)")
