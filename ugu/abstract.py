"""`@NAME`: a unix socket in Linux's abstract namespace, as uWSGI writes one
(it reads `\\0NAME`, a backslash and a zero, as the same).

`abstract-socket` makes every unix socket the instance binds abstract
(its sockets, shared sockets, the stats servers, the tracebacker's),
the path taken as the name; it changes no address connected to.

Such a socket has no file: nothing to remove before binding it, to chmod,
chown or vacuum.  uWSGI's address for it counts the name's terminating
NUL, so the kernel knows it as NUL, NAME, NUL; ugu binds and connects to
the same bytes, so that its sockets and uWSGI's (a stats server, a node
of the router, `--connect-and-read`) find each other.
"""

from ugu import log

# What starts such an address: `@`, or a backslash and a zero.
PREFIXES = ("@", "\\0")


# abstract-socket: every unix socket the instance binds is abstract.
_forced = False


def is_abstract(address):
    return address.startswith(PREFIXES)


def force(on):
    """abstract-socket: the unix sockets bound from now on (by this
    process and those it forks) are abstract, their path the name."""
    global _forced
    _forced = bool(on)


def bound_abstract(address):
    """Whether a unix socket the instance binds at `address` is abstract
    (and has no file to remove, chmod or vacuum)."""
    return _forced or is_abstract(address)


def bind_sockaddr(address):
    """What to bind for `address`: a forced name (abstract-socket) is,
    as uWSGI binds it, a NUL and the name, without the NUL after it that
    @NAME's address counts."""
    if _forced and not is_abstract(address):
        return f"\0{address}"
    return sockaddr(address)


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
