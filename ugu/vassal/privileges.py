"""The process and privilege options of uWSGI's core: ids taken while
the config is read (immediate-uid, immediate-gid), file locks (flock and
its kin), envdirs, file-write, the jail (unshare, chroot, pivot-root),
the process limit and the scheduler priority.

Imported only where one of them is configured: each is called from the
place of the start where uWSGI applies it.
"""

import errno
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
        if not wait and e.errno in (errno.EAGAIN, errno.EACCES):
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
    from ugu.options.expand import atoi
    prio = atoi(config["prio"])  # read as uWSGI reads it, sign and all
    if not prio:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, prio)
    except OSError as e:
        log.log(f"setpriority(): {e.strerror}")
        return
    log.log(f"scheduler priority set to {prio}")


# unshare's names, as uWSGI reads them, and the kernel's CLONE_ flags.
_NAMESPACES = {"files": 0x400, "ipc": 0x08000000, "net": 0x40000000,
               "io": 0x80000000, "parent": 0x8000, "pid": 0x20000000,
               "ns": 0x20000, "fs": 0x20000, "mount": 0x20000,
               "mnt": 0x20000, "sysvsem": 0x40000, "uts": 0x04000000,
               "user": 0x10000000}
_CLONE_NEWUSER = 0x10000000


def unshare_mask(config, option):
    """The flags of every line of unshare (or unshare2), together; an
    unknown name refused.  Empty names (`net,,ipc`, a comma at either
    end) are skipped, as uWSGI's tokenizer skips them."""
    mask = 0
    for value in config[option]:
        for name in filter(None, value.split(",")):
            if name not in _NAMESPACES:
                raise ConfigError(
                    f"unknown namespace subsystem: {name} (write some of "
                    f"{', '.join(sorted(_NAMESPACES))}, comma-separated)",
                    option=option)
            mask |= _NAMESPACES[name]
    return mask


def unshare(config, option):
    """unshare, unshare2: the instance in new namespaces, said with the
    mask as uWSGI says it (a C int); in a new user namespace, uid 0
    there.  Only root may: a refusal ends the start."""
    from ugu import proc
    import ctypes
    mask = unshare_mask(config, option)
    signed = mask - (1 << 32) if mask >= 1 << 31 else mask
    if proc.libc.unshare(ctypes.c_int(signed)) != 0:
        raise ConfigError(f"unshare(): {os.strerror(ctypes.get_errno())}",
                          option=option)
    log.log(f"[linux-namespace] applied unshare() mask: {signed}")
    if mask & _CLONE_NEWUSER:
        try:
            os.setuid(0)
        except OSError as e:
            raise ConfigError(f"uwsgi_as_root()/setuid(0): {e.strerror} "
                              f"(the new user namespace maps no uid 0)",
                              option=option) from None


# pivot_root has no C library function: its system call's number.
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41,
                   "i686": 217, "i386": 217, "armv7l": 218, "ppc64le": 203,
                   "s390x": 217}
_MS_REC, _MS_PRIVATE = 0x4000, 0x40000


def pivot_root(config):
    """pivot-root NEW_ROOT PUT_OLD: every mount made private, then the
    root moved to NEW_ROOT (a mount point), the old one put at PUT_OLD
    (a folder in NEW_ROOT: its full path, or relative to NEW_ROOT), and
    the folder the new root, as uWSGI does."""
    from ugu import proc
    import ctypes
    value = config["pivot-root"]
    new_root, space, put_old = value.partition(" ")
    if not space:
        raise ConfigError("invalid pivot_root syntax, new_root and put_old "
                          "must be separated by a space",
                          option="pivot-root")
    number = _SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise ConfigError(f"ugu knows no pivot_root system call on "
                          f"{os.uname().machine}: use chroot",
                          option="pivot-root")
    libc = proc.libc
    if libc.mount(None, b"/", None, ctypes.c_ulong(_MS_REC | _MS_PRIVATE),
                  None) != 0:
        raise ConfigError(f"mount(): {os.strerror(ctypes.get_errno())}",
                          option="pivot-root")
    try:
        os.chdir(new_root)
    except OSError as e:
        raise ConfigError(f"pivot_root()/chdir() to {new_root}: "
                          f"{e.strerror}", option="pivot-root") from None
    if libc.syscall(number, b".", os.fsencode(put_old)) != 0:
        raise ConfigError(f"pivot_root(): "
                          f"{os.strerror(ctypes.get_errno())}",
                          option="pivot-root")
    if config["memory-report"]:
        log.log("*** Warning, on linux system you have to bind-mount the "
                "/proc fs in your chroot to get memory debug/report.")
    os.chdir("/")
