"""Process hygiene: pidfile, unix socket permissions, dropping root, and
`vacuum` (removing what the instance created when it ends)."""

import grp
import os
import pwd
import socket

from ugu import log, proc
from ugu.options.errors import ConfigError

DEFAULT_SOCKET_MODE = "666"


def write_pidfile(path):
    """Written once by the first master; reloads keep it (as uWSGI)."""
    log.log(f"writing pidfile to {path}")
    proc.write_pidfile(path, "pidfile")


def chmod_sockets(config, listeners):
    value = config["chmod-socket"]
    if value is None:
        return
    text = DEFAULT_SOCKET_MODE if value in ("", "true") else value
    try:
        mode = int(text, 8)
    except ValueError:
        raise ConfigError(f"invalid mode '{value}'",
                          option="chmod-socket") from None
    for listener in _unix(listeners):
        if text == DEFAULT_SOCKET_MODE:
            log.log("chmod() socket to 666 for lazy and brave users")
        else:
            log.log(f"chmod() socket to {text}")
        os.chmod(listener.sock.getsockname(), mode)


def _unix(listeners):
    return [l for l in listeners if l.sock.family == socket.AF_UNIX]


def drop_privileges(config):
    """setgid, then setuid, as uWSGI does when started as root."""
    if os.getuid() != 0:
        return
    if config["gid"]:
        gid = _lookup(config["gid"], grp.getgrnam, "gr_gid", "gid")
        os.setgroups([])
        os.setgid(gid)
        log.log(f"setgid() to {gid}")
    if config["uid"]:
        uid = _lookup(config["uid"], pwd.getpwnam, "pw_uid", "uid")
        os.setuid(uid)
        log.log(f"setuid() to {uid}")


def _lookup(name, getter, field, option):
    if name.isdigit():
        return int(name)
    try:
        return getattr(getter(name), field)
    except KeyError:
        raise ConfigError(f"unknown {option} '{name}'",
                          option=option) from None


def vacuum(config, listeners):
    """Remove the pidfile and the unix sockets; uWSGI's VACUUM lines."""
    if config["pidfile"] and _remove(config["pidfile"]):
        log.log("VACUUM: pidfile removed.")
    for listener in _unix(listeners):
        path = listener.sock.getsockname()
        if _remove(path):
            log.log(f"VACUUM: unix socket {path} removed.")


def _remove(path):
    try:
        os.unlink(path)
    except OSError as e:
        log.log(f"VACUUM: unlink({path}): {e.strerror}")
        return False
    return True
