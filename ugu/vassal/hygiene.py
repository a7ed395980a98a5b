"""Process hygiene: pidfile, dropping root, and `vacuum` (removing what
the instance created when it ends), stdin."""

import atexit
import grp
import os
import pwd
import socket
import termios

from ugu import abstract, log, proc, stats
from ugu.options.errors import ConfigError
from ugu.vassal import sockets

def write_pidfile(path, option="pidfile"):
    """Written once by the first master; reloads keep it (as uWSGI)."""
    log.log(f"writing pidfile to {path}")
    proc.write_pidfile(path, option)


def write_safe_pidfiles(config):
    """safe-pidfile2, then safe-pidfile: the master's pid (the instance's
    without one) once the first workers are spawned, the app loaded and
    privileges dropped, so that a pid there is an instance that has
    started; once, as pidfile."""
    for option in ("safe-pidfile2", "safe-pidfile"):
        if config[option]:
            log.log(f"writing pidfile to {config[option]}")
            proc.write_pidfile(config[option], option)


def remap_stdin(config):
    """As uWSGI once its sockets are bound: stdin becomes /dev/null, so
    that no worker or app reads the terminal (or pipe) ugu was started
    from.  honour-stdin keeps it, and a terminal's modes are set back
    when the process that kept them exits, as uWSGI's vacuum does."""
    # pyshell reads it, as uWSGI's turns honour-stdin on.
    if config["honour-stdin"] or config["pyshell"] is not None or \
            config["pyshell-oneshot"] is not None:
        _keep_terminal_modes()
        return
    fd = os.open(os.devnull, os.O_RDONLY)
    if fd != 0:
        os.dup2(fd, 0)
        os.close(fd)


_kept_terminal = None    # (pid of the master, modes) under honour-stdin


def _keep_terminal_modes():
    global _kept_terminal
    try:
        modes = termios.tcgetattr(0)
    except termios.error:
        return  # not a terminal
    _kept_terminal = (os.getpid(), modes)
    # For an end that does not pass the master's own (an error at start).
    atexit.register(restore_terminal_modes)


def restore_terminal_modes():
    """The terminal's modes as the master found them, once, by the
    master alone (forked children inherit what it kept)."""
    global _kept_terminal
    if _kept_terminal is None or _kept_terminal[0] != os.getpid():
        return
    modes, _kept_terminal = _kept_terminal[1], None
    try:
        termios.tcsetattr(0, termios.TCSANOW, modes)
    except termios.error as e:
        log.log(f"vacuum()/tcsetattr(): {e.args[-1]}")


def _socket_files(listeners):
    """The unix sockets that have a file (an abstract one has none), but
    a zerg server's: uWSGI's zerg removes them as it exits, and the
    server, still listening, is found by no new client."""
    return [l for l in listeners if l.sock.family == socket.AF_UNIX
            and not abstract.bound_abstract(l.name) and not l.zerg]


def drop_privileges(config):
    """setgid, then setuid, as uWSGI does when started as root."""
    if config["add-gid"] and not config["gid"]:
        raise ConfigError("add-gid sets the additional groups with the "
                          "setgid() of gid, as uWSGI's does (without it "
                          "uWSGI ignores them): set gid too",
                          option="add-gid")
    if os.getuid() != 0:
        _check_own_ids(config)
        return
    gid = uid = 0
    if config["gid"]:
        gid = _lookup(config["gid"], grp.getgrnam, "gr_gid", "gid")
    if config["uid"]:
        uid = _lookup(config["uid"], pwd.getpwnam, "pw_uid", "uid")
    if config["logfile-chown"]:
        _chown_log(uid, gid)
    if config["gid"]:
        log.log(f"setgid() to {gid}")
        os.setgid(gid)
        _set_groups(config, uid, gid)
    if config["uid"]:
        os.setuid(uid)
        log.log(f"setuid() to {uid}")


def _check_own_ids(config):
    """Started as a user, whose ids only root could change: a gid or uid
    other than that user's stops the start, as uWSGI's."""
    for option, field, table, current in (
            ("gid", "gr_gid", grp.getgrnam, os.getgid()),
            ("uid", "pw_uid", pwd.getpwnam, os.getuid())):
        if config[option] and \
                _lookup(config[option], table, field, option) != current:
            raise ConfigError(f"cannot set{option}() as non-root user "
                              f"(ugu runs as uid {os.getuid()}, gid "
                              f"{os.getgid()}): start it as root, or "
                              f"remove {option}", option=option)


def _set_groups(config, uid, gid):
    """The additional groups, as uWSGI sets them with gid: none with
    no-initgroups or no uid, else the user's (initgroups()); add-gid's
    instead of those where given.  Each one said but the group itself."""
    if config["no-initgroups"] or not uid:
        os.setgroups([])
    else:
        try:
            name = config["uid"] if not config["uid"].isdigit() else \
                pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        os.initgroups(name, gid)
    if config["add-gid"]:
        os.setgroups([_added_group(value) for value in config["add-gid"]])
    for other in os.getgroups():
        if other == gid:
            continue
        try:
            log.log(f"set additional group {other} "
                    f"({grp.getgrgid(other).gr_name})")
        except KeyError:
            log.log(f"set additional group {other}")


def _added_group(value):
    """add-gid: a number other than 0, else a group's name."""
    if value.isdigit() and int(value):
        return int(value)
    try:
        return grp.getgrnam(value).gr_gid
    except KeyError:
        raise ConfigError(f"unable to find group {value}",
                          option="add-gid") from None


def _chown_log(uid, gid):
    """logfile-chown: the log file goes to uid and gid (root where one
    is unset, as uWSGI's), so that the instance can still reopen or
    rotate it once it is no longer root."""
    try:
        os.fchown(2, uid, gid)
    except OSError as e:
        raise ConfigError(f"cannot give the log file to {uid}:{gid}: "
                          f"{e.strerror}", option="logfile-chown") from None


def lookup_id(name, kind, option):
    """The number of user (`kind` uid) or group (gid) `name`, a name or
    digits; ConfigError naming `option` for one the system lacks."""
    if kind == "uid":
        return _lookup(name, pwd.getpwnam, "pw_uid", option)
    return _lookup(name, grp.getgrnam, "gr_gid", option)


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
    if config["pidfile2"] and _remove(config["pidfile2"]):
        log.log("VACUUM: pidfile2 removed.")
    # As uWSGI: safe-pidfile is left where uid is set, safe-pidfile2 not.
    if config["safe-pidfile"] and not config["uid"] and \
            _remove(config["safe-pidfile"]):
        log.log("VACUUM: safe pidfile removed.")
    if config["safe-pidfile2"] and _remove(config["safe-pidfile2"]):
        log.log("VACUUM: safe pidfile2 removed.")
    for listener in _socket_files(listeners):
        path = listener.sock.getsockname()
        if sockets.unix_inode(listener.sock) not in (listener.inode, None):
            log.log(f"VACUUM WARNING: unix socket {path} changed inode. "
                    f"Skip removal")
            continue
        if _remove(path):
            log.log(f"VACUUM: unix socket {path} removed.")


def vacuum_stats(config):
    """The stats server's unix socket, after the others, as uWSGI."""
    address = config["stats"]
    if address and not stats.is_tcp(address) and \
            not abstract.bound_abstract(address) and _remove(address):
        log.log(f"VACUUM: unix socket {address} (stats) removed.")


def _remove(path):
    try:
        os.unlink(path)
    except OSError as e:
        log.log(f"VACUUM: unlink({path}): {e.strerror}")
        return False
    return True
