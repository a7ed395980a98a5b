"""Waiting at start-up for what the instance needs from outside.

`wait-for-interface`, `wait-for-fs` (also spelt `wait-for-file` and
`wait-for-dir`: uWSGI 2.0 files all three in one list, so each accepts a
file or a directory) and `wait-for-mountpoint` are waited for only when
started as root, before the hooks as root; `wait-for-socket` always, once
privileges are dropped, before chdir and the app.  Each item is tried once
a second, up to its timeout (0: 60 seconds); one that never comes ends
the start with status 1, as in uWSGI.  Nothing tells when a path appears,
an interface comes up or a server starts listening, so polling is the
only way, at uWSGI's pace, which its log lines count in.
"""

import os
import socket
import time

from ugu import log

DEFAULT_TIMEOUT = 60
# A connection that takes longer does not count as ready.
CONNECT_TIMEOUT = 1


class WaitFailed(Exception):
    """An item did not come in time: the start ends (status 1)."""


def as_root(config):
    """The waits uWSGI does as root, in its order."""
    for name in config["wait-for-interface"]:
        _wait_for_interface(name, _timeout(config,
                                           "wait-for-interface-timeout"))
    timeout = _timeout(config, "wait-for-fs-timeout")
    for path in config["wait-for-fs"]:
        _poll(path, timeout, _exists, "found")
    for path in config["wait-for-mountpoint"]:
        _poll(path, timeout, _mounted, "mounted")


def sockets(config):
    timeout = _timeout(config, "wait-for-socket-timeout")
    for name in config["wait-for-socket"]:
        _poll(name, timeout, _accepts, "ready")


def _timeout(config, option):
    return config[option] or DEFAULT_TIMEOUT


def _wait_for_interface(name, timeout):
    log.log(f"waiting for interface {name} (max {timeout} seconds) ...")
    waited = 0
    while True:
        if waited > timeout:
            log.log(f"interface {name} unavailable after {waited} seconds")
            raise WaitFailed(name)
        index = _interface_index(name)
        if index:
            log.log(f"interface {name} found with index {index}")
            return
        time.sleep(1)
        waited += 1


def _interface_index(name):
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return 0


def _poll(name, timeout, ready, word):
    log.log(f"waiting for {name} (max {timeout} seconds) ...")
    waited = 0
    while True:
        if waited > timeout:
            log.log(f"{name} unavailable after {waited} seconds")
            raise WaitFailed(name)
        if ready(name):
            log.verbose(f"{name} {word}")
            return
        time.sleep(1)
        waited += 1


def _exists(path):
    return os.path.exists(path)


def _mounted(path):
    """A directory on another device than its parent's."""
    try:
        here = os.stat(path)
        parent = os.stat(os.path.join(path, ".."))
    except OSError:
        return False
    return os.path.isdir(path) and here.st_dev != parent.st_dev


def _accepts(name):
    """Whether a connection to HOST:PORT (at its first ':', as uWSGI
    splits it) or to a unix socket (`@name`: abstract) is accepted."""
    host, colon, port = name.partition(":")
    if colon:
        family, address = socket.AF_INET, (host or "0.0.0.0",
                                           _port(port))
    else:
        family = socket.AF_UNIX
        address = "\0" + name[1:] if name.startswith("@") else name
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect(address)
        except (OSError, OverflowError):
            return False
    return True


def _port(text):
    """The leading digits, as atoi reads them (0 without)."""
    digits = ""
    for char in text.strip():
        if not char.isdigit():
            break
        digits += char
    return int(digits or 0)
