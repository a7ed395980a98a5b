"""The process and privilege options of uWSGI's core: ids taken while
the config is read (immediate-uid, immediate-gid), file locks (flock and
its kin), envdirs, file-write, chroot, the process limit, the scheduler
priority and never-swap.

Imported only where one of them is configured: each is called from the
place of the start where uWSGI applies it.
"""

import grp
import os
import pwd
import resource

from ugu import log
from ugu.options.errors import ConfigError

# The locked files' descriptors: open for as long as the process lives,
# so that its lock holds (fcntl's locks go with the last close).
_locks = []


def _id_of(value, getter, field):
    """uWSGI's reading of an immediate id: a number other than 0, else
    a name; 0 where neither gives one."""
    number = int(value) if value.isdigit() else 0
    if number:
        return number
    try:
        return getattr(getter(value), field)
    except KeyError:
        return 0


def _reloaded():
    """Started again by a reload (exec), which kept the ids taken at the
    first start: those are not taken again (a user that is no longer
    root could not drop its groups again, which ends uWSGI's reload)."""
    return bool(os.environ.get("UWSGI_RELOADS"))


def immediate_gid(value):
    """immediate-gid: the group, and no additional groups, as the line
    is read (root's group refused, as uWSGI refuses it)."""
    gid = _id_of(value, grp.getgrnam, "gr_gid")
    if gid <= 0:
        raise ConfigError(f"invalid gid '{value}': name a group that "
                          f"exists, other than root's")
    try:
        if not (_reloaded() and os.getgid() == gid):
            os.setgid(gid)
            os.setgroups([])
    except OSError as e:
        raise ConfigError(f"setgid() to {gid}: {e.strerror} (only root "
                          f"can take another group)") from None
    log.log(f"immediate gid: {os.getgid()}")


def immediate_uid(value):
    """immediate-uid: the user, as the line is read (root refused)."""
    uid = _id_of(value, pwd.getpwnam, "pw_uid")
    if uid <= 0:
        raise ConfigError(f"invalid uid '{value}': name a user that "
                          f"exists, other than root")
    try:
        if not (_reloaded() and os.getuid() == uid):
            os.setuid(uid)
    except OSError as e:
        raise ConfigError(f"setuid() to {uid}: {e.strerror} (only root "
                          f"can become another user)") from None
    log.log(f"immediate uid: {os.getuid()}")


def immediate(name, value):
    """The options acted on as their line is read."""
    if name == "immediate-uid":
        immediate_uid(value)
    elif name == "immediate-gid":
        immediate_gid(value)
    elif name in ("flock", "flock-wait"):
        lock(value, name == "flock-wait", name)
    elif name == "early-envdir":
        envdir(value, name)


def lock(path, wait, option):
    """flock and its kin: a write lock on the whole of an existing file,
    held until the process ends.  Without `wait` a file locked by
    another process ends the start; with it the start waits for it."""
    import fcntl
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as e:
        raise ConfigError(f"open(\"{path}\"): {e.strerror} (the file to "
                          f"lock must exist and be writable)",
                          option=option) from None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX if wait
                    else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if not wait and e.errno in (11, 13):  # EAGAIN, EACCES
            raise ConfigError(f"{path} is locked by another instance",
                              option=option) from None
        raise ConfigError(f"fcntl() on {path}: {e.strerror}",
                          option=option) from None
    _locks.append(fd)


def lock_after_log(config):
    """flock2 and flock-wait2: once the log is set up."""
    if config["flock2"]:
        lock(config["flock2"], False, "flock2")
    if config["flock-wait2"]:
        lock(config["flock-wait2"], True, "flock-wait2")


def envdir(path, option):
    """A daemontools envdir: each regular file (not hidden) names a
    variable; its content, trailing blanks and line ends removed and a
    NUL read as a newline, is its value; an empty file unsets it."""
    try:
        names = sorted(os.listdir(path))
    except OSError as e:
        raise ConfigError(f"[uwsgi-envdir] opendir() {path}: {e.strerror}",
                          option=option) from None
    for name in names:
        if name.startswith("."):
            continue
        filename = os.path.join(path, name)
        try:
            if not os.path.isfile(filename):
                continue
            with open(filename, "rb") as f:
                content = f.read()
        except OSError as e:
            raise ConfigError(f"[uwsgi-envdir] {filename}: {e.strerror}",
                              option=option) from None
        if not content:
            os.environ.pop(name, None)
            continue
        value = content.rstrip(b"\r\n\t ").replace(b"\0", b"\n")
        try:
            os.environb[os.fsencode(name)] = value
        except ValueError as e:
            raise ConfigError(f"[uwsgi-envdir] unable to set {name}: {e}",
                              option=option) from None


def envdirs(config):
    """envdir: after the asap hooks."""
    for path in config["envdir"]:
        envdir(path, "envdir")


def file_write(config):
    """file-write FILE=VALUE: the value and a newline written to the
    file (truncated), before privileges drop."""
    for item in config["file-write"]:
        path, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"unable to write empty value for \"{path}\""
                              f": write file-write = FILE=VALUE",
                              option="file-write")
        try:
            with open(path, "w") as f:
                log.log(f"writing \"{value}\" to \"{path}\" ...")
                f.write(value + "\n")
        except OSError as e:
            raise ConfigError(f"open(\"{path}\"): {e.strerror}",
                              option="file-write") from None


def chroot(config):
    """chroot, as root at the first start, before the waits and the
    as-root hooks; the folder is not changed (chdir moves into it)."""
    path = config["chroot"]
    if os.getuid() != 0:
        raise ConfigError("cannot chroot() as non-root user: start the "
                          "instance as root, or remove chroot",
                          option="chroot")
    log.log(f"chroot() to {path}")
    try:
        os.chroot(path)
    except OSError as e:
        raise ConfigError(f"chroot() to {path}: {e.strerror}",
                          option="chroot") from None
    if config["memory-report"]:
        log.log("*** Warning, on linux system you have to bind-mount the "
                "/proc fs in your chroot to get memory debug/report.")


def limit_nproc(config):
    """limit-nproc: both limits on the processes of the user, then the
    soft limit said, and fewer workers where it leaves no room for
    them and the master, as uWSGI does."""
    wanted = config["limit-nproc"]
    if wanted > 0:
        log.log(f"limiting number of processes to {wanted}...")
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (wanted, wanted))
        except (OSError, ValueError) as e:
            log.log(f"setrlimit(): {getattr(e, 'strerror', None) or e}")
    soft = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    if soft == resource.RLIM_INFINITY:
        return
    log.log(f"your processes number limit is {soft}")
    if soft < config["processes"] + int(bool(config["master"])):
        config.adjust("processes", max(soft - 1, 0))
        log.log(f"!!! number of workers adjusted to {soft - 1} due to "
                f"system limits !!!")


def set_priority(config):
    """prio: the scheduler priority (nice) of the instance, which every
    process it forks inherits."""
    prio = config["prio"]
    try:
        os.setpriority(os.PRIO_PROCESS, 0, prio)
    except OSError as e:
        log.log(f"setpriority(): {e.strerror}")
        return
    log.log(f"scheduler priority set to {prio}")
