"""Static files: `check-static` roots, looked up before the app.

Containment is decided on resolved paths (DEVIATIONS 10-11): the file's
real path must lie inside a root's real path, component by component, so
neither `..`, a symlink leading out, a sibling folder sharing the root's
prefix, nor a NUL byte reaches a file outside.
"""

import email.utils
import os
import stat
from dataclasses import dataclass

from ugu import log

MIME_FILE = "/etc/mime.types"


@dataclass(frozen=True)
class StaticFile:
    path: str
    fd: int                   # open for reading; whoever serves it closes it
    size: int
    mtime: float
    content_type: str | None
    encoding: str | None      # "br" or "gzip" for FILE.br or FILE.gz

    @property
    def last_modified(self):
        return email.utils.formatdate(self.mtime, usegmt=True)

    def headers(self):
        """Headers in uWSGI's order."""
        headers = []
        if self.encoding:
            headers.append(("Content-Encoding", self.encoding))
        if self.content_type:
            headers.append(("Content-Type", self.content_type))
        headers.append(("Content-Length", str(self.size)))
        headers.append(("Last-Modified", self.last_modified))
        return headers


class StaticFiles:
    def __init__(self, config):
        self.roots = []
        for root in config["check-static"]:
            self.roots.append(os.path.realpath(root))
        self.gzip_all = config["static-gzip-all"]
        self.types = _mime_types(config) if self.roots else None

    def lookup(self, method, path_info, accept_encoding):
        """The StaticFile to send for the request, or None."""
        if not self.roots or method not in ("GET", "HEAD"):
            return None
        if not path_info.strip("/"):
            # A root itself, a folder or nothing: never a file to send,
            # so the site's front page costs no look-up (two system calls).
            return None
        if "\0" in path_info:
            return None
        if not path_info.isascii():
            # PATH_INFO holds the request's bytes as latin-1; the file's
            # name is those bytes (UTF-8, most often).
            path_info = os.fsdecode(path_info.encode("latin-1"))
        for root in self.roots:
            found = self._in_root(root, path_info, accept_encoding)
            if found:
                return found
        return None

    def _in_root(self, root, path_info, accept_encoding):
        # Most requests name no file and go to the app: access() tells
        # them apart without the exception a failed stat() raises (0.3 us
        # against 0.7 us).
        joined = f"{root}/{path_info.lstrip('/')}" if root != "/" else \
            "/" + path_info.lstrip("/")
        if not os.access(joined, os.F_OK):
            return None
        try:
            st = os.stat(joined)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            # Nothing to serve; one outside the root is named, as uWSGI
            # names it, unless it is the root itself (for "/").
            if path_info.strip("/"):
                _inside(os.path.realpath(joined), root)
            return None
        fd = _open(joined)
        if fd is None:
            return None
        path = _opened_path(fd, joined)
        if not _inside(path, root):
            os.close(fd)
            return None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return None
        content_type = self._content_type(path)
        if self.gzip_all and accept_encoding:
            for coding, suffix in _accepted(accept_encoding):
                variant = _variant(path + suffix)
                if variant:
                    os.close(fd)
                    v_fd, v_st = variant
                    return StaticFile(path + suffix, v_fd, v_st.st_size,
                                      v_st.st_mtime, content_type, coding)
        return StaticFile(path, fd, st.st_size, st.st_mtime, content_type,
                          None)

    def _content_type(self, path):
        return self.types.get(os.path.splitext(path)[1])


def _open(path):
    # Non-blocking, so that a FIFO swapped in after the stat cannot hang
    # the core; a regular file ignores the flag.
    try:
        return os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None


def _opened_path(fd, path):
    """The real path of an open file: one readlink of /proc/self/fd/N
    instead of realpath's lstat per component (and its Python)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(path)


def _inside(path, root):
    """Whether the real path lies in the root; uWSGI's line if not."""
    if path == root or path.startswith(root.rstrip("/") + "/"):
        return True
    log.log(f"[uwsgi-fileserve] security error: {path} is not under "
            f"{root} or a safe path")
    return False


def _variant(path):
    """(fd, stat) of a compressed FILE.gz or FILE.br when it is a regular
    file, else None."""
    fd = _open(path)
    if fd is None:
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    return fd, st


# The compressed variants uWSGI looks for, in its order of preference:
# (content coding, file suffix, the names a client accepts it by).
_VARIANTS = (("br", ".br", ("br",)), ("gzip", ".gz", ("gzip", "x-gzip")))


def _accepted(accept_encoding):
    """(coding, suffix) of each variant the client accepts, best first.
    RFC 9110: codings are case-insensitive, `*` stands for any other, and
    q=0 refuses one (uWSGI looks for the name anywhere in the header)."""
    refused, accepted, star = set(), set(), False
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.strip().partition(";")
        coding = coding.strip()
        if _q_is_zero(params):
            refused.add(coding)
        elif coding == "*":
            star = True
        else:
            accepted.add(coding)
    return [(coding, suffix) for coding, suffix, names in _VARIANTS
            if not refused.intersection(names) and
            (accepted.intersection(names) or star)]


def _q_is_zero(params):
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip() == "q":
            try:
                return float(value) == 0
            except ValueError:
                return False
    return False


def _mime_types(config):
    """{".ext": type} from the mime files, as uWSGI reads them: the last
    extension of a name, case and all, and only what the files say.
    Python's mimetypes answers otherwise (its own table first, `.tar.gz`
    as a gzipped tar, `.JS` as `.js`)."""
    files = config["mimefile"] or [MIME_FILE]
    types = {}
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                found = _read_mime_file(types, f)
        except OSError:
            # uWSGI's line, for a file it cannot read as for a missing one.
            log.log(f"!!! no {path} file found !!!")
            continue
        log.log(f"building mime-types dictionary from file {path}..."
                f"{found} entry found")
    return types


def _read_mime_file(types, lines):
    """Add `type ext ext...` lines, the first line naming an extension
    winning; the number of extensions read.  As in uWSGI, a line that
    does not start with a letter or digit (a comment, an indented line)
    is skipped, and a `#` further on is one more extension."""
    found = 0
    for line in lines:
        if not (line[:1].isascii() and line[:1].isalnum()):
            continue
        fields = line.split()
        for ext in fields[1:]:
            types.setdefault("." + ext, fields[0])
            found += 1
    return found
