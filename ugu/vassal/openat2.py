"""openat2() with RESOLVE_NO_SYMLINKS, for static files: a file opened
through a name with no symlink anywhere on it, and no `.` or `..` in it,
lies where the name says, so its real path is the name itself and no
readlink() of /proc/self/fd is needed to tell whether it is inside its
root.  The kernel checks each component as it walks the name, so a
symlink put in place at any moment fails the open (ELOOP) rather than
being followed.

Linux 5.6 added the call; where it is missing (an older kernel, a seccomp
filter that refuses it, an architecture that numbers it otherwise)
AVAILABLE is False and the caller opens the file the long way.
"""

import ctypes
import os

# The architectures whose system call table has openat2 at 437 (alpha
# and mips number it otherwise).
_MACHINES = {"x86_64", "i386", "i686", "aarch64", "armv6l", "armv7l",
             "armv8l", "ppc64", "ppc64le", "riscv64", "s390x"}
_SYS_OPENAT2 = 437
_AT_FDCWD = -100
_RESOLVE_NO_SYMLINKS = 0x04
# What static.py's own open() asks for (os.open adds O_CLOEXEC itself).
FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


# A handle of our own: the argument types set here are not proc.libc's.
_syscall = ctypes.CDLL(None, use_errno=True).syscall
_syscall.restype = ctypes.c_long
_syscall.argtypes = (ctypes.c_long, ctypes.c_long, ctypes.c_char_p,
                     ctypes.POINTER(_OpenHow), ctypes.c_size_t)
_HOW = _OpenHow(FLAGS, 0, _RESOLVE_NO_SYMLINKS)
_HOW_SIZE = ctypes.sizeof(_HOW)


def open_no_symlinks(path):
    """A descriptor of the file `path` (absolute) names, open for
    reading, or -1 where it cannot be opened so (a symlink on the way,
    no such file)."""
    return _syscall(_SYS_OPENAT2, _AT_FDCWD, os.fsencode(path), _HOW,
                    _HOW_SIZE)


def _works():
    if os.uname().machine not in _MACHINES:
        return False
    fd = open_no_symlinks("/")
    if fd < 0:
        return False
    os.close(fd)
    return True


AVAILABLE = _works()
