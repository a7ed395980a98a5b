"""Static files: `check-static` roots and `static-map` mountpoints,
looked up before the app, in uWSGI's order.

uWSGI's order: `check-static` roots (the whole PATH_INFO under each), then
`static-map` (a mountpoint that prefixes PATH_INFO, stripped, names a path
under a directory or, for a file, the file itself), then `static-map2`
(the same, the whole PATH_INFO appended), then, with
`check-static-docroot`, the request's DOCUMENT_ROOT (as a `check-static`
root, resolved for each request).  The first file found is sent;
a directory sends its first `static-index` file.  Anything else (nothing
there, a method other than GET and HEAD) falls to the app.

Containment is decided on resolved paths (DEVIATIONS 10-11): the file's
real path must lie inside its root's real path (or a `static-safe` path),
component by component, so neither `..`, a symlink leading out, a sibling
folder sharing the root's prefix, nor a NUL byte reaches a file outside.
"""

import dataclasses
import errno
import os
import re
import stat
from dataclasses import dataclass

from ugu import log, pcre
from ugu.options import registry
from ugu.options.errors import ConfigError
from ugu.vassal import expires

MIME_FILE = "/etc/mime.types"
# The longest path uWSGI resolves (Linux's PATH_MAX).
PATH_MAX = 4096
# The options that have a file's compressed variant looked for.
GZIP_OPTIONS = ("static-gzip-all", "static-gzip", "static-gzip-dir",
                "static-gzip-ext")
# Setting any of these builds the mime types, as in uWSGI (its MIME flag).
MIME_OPTIONS = ("check-static", "static-map", "static-map2", "static-index",
                "static-safe", "static-skip-ext", *GZIP_OPTIONS,
                "mimefile", "file-serve-mode", *expires.OPTIONS,
                "check-static-docroot", "static-cache-paths",
                "static-cache-paths-name")
_GZIP_REGEXP = registry.lookup("static-gzip")
# ugu.vassal.openat2, imported once a static option or a `static:` route
# has files to open.
_openat2 = None
SERVED_METHODS = ("GET", "HEAD")
# file-serve-mode's values, as uWSGI reads them (any case), and the
# header each answers with: the file's path, for the web server in front
# to send.
SERVE_HEADERS = {"x-sendfile": "X-Sendfile", "xsendfile": "X-Sendfile",
                 "x-accel-redirect": "X-Accel-Redirect",
                 "xaccelredirect": "X-Accel-Redirect",
                 "nginx": "X-Accel-Redirect"}


class Unanswered(Exception):
    """The request ends unanswered where its file was looked for, as
    uWSGI's does when it cannot resolve the request's DOCUMENT_ROOT: its
    line says 500, served by no app."""


@dataclass(frozen=True)
class StaticFile:
    path: str
    fd: int                   # open for reading; whoever serves it closes it
    size: int
    mtime: float
    content_type: str | None
    encoding: str | None      # "br" or "gzip" for FILE.br or FILE.gz
    expires: tuple = ()       # Expires headers by name, path, URI
    type_expires: tuple | None = None   # the one by Content-Type
    # file-serve-mode's header (X-Sendfile, X-Accel-Redirect): it names
    # the file and no body goes; None, and the file is sent.
    serve_header: str | None = None

    @property
    def last_modified(self):
        return expires.http_date(self.mtime)

    def headers(self):
        """Headers in uWSGI's order."""
        headers = list(self.expires)
        if self.encoding:
            headers.append(("Content-Encoding", self.encoding))
        if self.content_type:
            headers.append(("Content-Type", self.content_type))
            if self.type_expires:
                headers.append(self.type_expires)
        if self.serve_header:
            headers.append((self.serve_header, self.path))
        else:
            headers.append(("Content-Length", str(self.size)))
        headers.append(("Last-Modified", self.last_modified))
        return headers

    def partial_headers(self, first, last):
        """A 206's: the part's length, and where it lies in the file
        (uWSGI's place for it, before Last-Modified).  Under
        file-serve-mode, uWSGI's 206 has the 200's headers: nothing says
        which part."""
        headers = self.headers()
        if self.serve_header:
            return headers
        headers[-2] = ("Content-Length", str(last - first + 1))
        headers.insert(-1, ("Content-Range",
                            f"bytes {first}-{last}/{self.size}"))
        return headers

    def unsatisfiable_headers(self):
        """A 416's, uWSGI's only one: the file's size."""
        return [("Content-Range", f"bytes */{self.size}")]

    def not_modified_headers(self):
        """A 304's: the validator and caching headers of the 200
        (DEVIATIONS 12; uWSGI's 304 has none)."""
        headers = list(self.expires)
        if self.type_expires:
            headers.append(self.type_expires)
        headers.append(("Last-Modified", self.last_modified))
        return headers


class Root:
    """A `check-static` root: the whole PATH_INFO names a path under it."""

    def __init__(self, path, front_page_is_app):
        self.root = os.path.realpath(path)
        # A path of slashes names the root itself: with no index file to
        # look for, no file to send, so the site's front page costs no
        # look-up (two system calls and a realpath()), unless the look-up
        # stores what it found (static-cache-paths).
        self.front_page_is_app = front_page_is_app

    def filename(self, path_info):
        """The path the request names, or None."""
        if self.front_page_is_app and not path_info.strip("/"):
            return None
        return f"{self.root}/{_fs_name(path_info)}"


class Mapping:
    """A `static-map` (or, appending, `static-map2`) MOUNT=PATH.

    As in uWSGI, the mountpoint is a plain prefix of PATH_INFO (`/static`
    also takes `/staticfoo`), and PATH is resolved in each worker when a
    request first reaches it: a PATH missing then serves nothing for the
    worker's life; a file is served for every path under the mountpoint.
    """

    def __init__(self, mount, path, append):
        # As PATH_INFO holds it: the request's bytes as latin-1.
        self.mount = os.fsencode(mount).decode("latin-1")
        self.path = path
        self.append = append
        self.resolved = False
        self.root = None
        self.is_file = False

    def filename(self, path_info):
        """The path the request names (PATH itself for a file), or
        None."""
        if not path_info.startswith(self.mount):
            return None
        if not self.resolved:
            self._resolve()
        if self.root is None:
            return None
        if self.is_file:
            return self.root
        rest = path_info if self.append else path_info[len(self.mount):]
        return f"{self.root}/{_fs_name(rest)}"

    def _resolve(self):
        try:
            self.root = os.path.realpath(self.path, strict=True)
        except OSError:
            self.root = None
        else:
            self.is_file = os.path.isfile(self.root)
        self.resolved = True


class StaticFiles:
    def __init__(self, config):
        self.index = tuple(config["static-index"])
        front_page_is_app = not (self.index or config["static-cache-paths"])
        self.docroots = [Root(root, front_page_is_app)
                         for root in config["check-static"]]
        self.docroots += [Mapping(mount, path, False)
                          for mount, path in config["static-map"]]
        self.docroots += [Mapping(mount, path, True)
                          for mount, path in config["static-map2"]]
        self.safe = tuple(config["static-safe"])
        # As uWSGI: PATH_INFO's end before any look-up, and then the end
        # of the file's name (an index file's, a symlink's target).
        self.skip_ext = tuple(config["static-skip-ext"])
        self.skip_ext_path_info = tuple(
            os.fsencode(ext).decode("latin-1") for ext in self.skip_ext)
        self.expires = expires.Expires.from_config(config)
        self.wants_variant = _variant_rule(config)
        self.serve_header = _serve_header(config["file-serve-mode"])
        self.types = _mime_types(config) if any(
            config.is_set(name) for name in MIME_OPTIONS) else None
        if self.types is not None:
            _import_openat2()
        self.check_document_root = config["check-static-docroot"]
        if not (self.docroots or self.check_document_root):
            self.lookup = _nothing
        self.paths = None   # a staticpaths.ResolvedPaths, once made

    def cache_paths(self, config, caches):
        """static-cache-paths, once the caches are made: each name is
        resolved through the cache before it is looked at."""
        if not config["static-cache-paths"]:
            return
        from ugu.vassal import staticpaths
        self.paths = staticpaths.ResolvedPaths.from_config(config, caches)
        self._find = self._find_resolved

    def lookup(self, ex):
        """The StaticFile to send for the request, or None (the app's)."""
        path_info = ex.vars.get("PATH_INFO", "")
        if self.skip_ext and path_info.endswith(self.skip_ext_path_info):
            return None
        if "\0" in path_info:
            return None
        for docroot in self.docroots:
            filename = docroot.filename(path_info)
            if filename is None:
                continue
            found = self._find(ex, docroot.root, filename)
            if found:
                return found
            # An index file found for another method than GET or HEAD
            # changed PATH_INFO, and uWSGI looks on with the new one.
            path_info = ex.vars.get("PATH_INFO", "")
        if self.check_document_root:
            return self._in_document_root(ex, path_info)
        return None

    def _in_document_root(self, ex, path_info):
        """check-static-docroot: the file under the request's
        DOCUMENT_ROOT (none sent, or empty: the app's)."""
        document_root = ex.vars.get("DOCUMENT_ROOT")
        if not document_root:
            return None
        root = _resolved_root(document_root)
        return self._find(ex, root, f"{root}/{_fs_name(path_info)}")

    def open_file(self, ex, path):
        """The StaticFile a route's `static:PATH` names, or None.  As in
        uWSGI, the file's real path must be PATH itself: a relative path,
        or one through a symlink, is refused with uWSGI's line."""
        path = _fs_name(path)
        if "\0" in path:
            return None
        _import_openat2()
        name = path if self.paths is None else self.paths.real_path(path)
        if name is None or not os.access(name, os.F_OK):
            return None
        opened = self._open_inside(name, path)
        if opened is None:
            return None
        return self._static_file(ex, *opened, root=None)

    def _find(self, ex, root, filename):
        """uWSGI's file_serve: the file named, or a directory's index,
        if it lies inside the root and the method is GET or HEAD."""
        # Most requests name no file and go to the app: access() tells
        # them apart without the exception a failed stat() raises (0.3 us
        # against 0.7 us).
        if not os.access(filename, os.F_OK):
            return None
        try:
            st = os.stat(filename)
        except OSError:
            return None
        if stat.S_ISREG(st.st_mode):
            opened = self._open_inside(filename, root)
        elif stat.S_ISDIR(st.st_mode) and self.index:
            opened = self._index(ex, filename, root)
        else:
            # Nothing to serve; one outside the root is named, as uWSGI
            # names it.
            self._inside(os.path.realpath(filename), root)
            return None
        if opened is None:
            return None
        fd, st, name = opened
        if ex.method not in SERVED_METHODS or (
                self.skip_ext and name.endswith(self.skip_ext)):
            os.close(fd)
            return None
        return self._static_file(ex, fd, st, name, root)

    def _find_resolved(self, ex, root, filename):
        """_find under static-cache-paths: the name's real path, from
        the cache or stored there, is looked at instead."""
        real = self.paths.real_path(filename)
        if real is None:
            return None
        return StaticFiles._find(self, ex, root, real)

    def _open_inside(self, filename, root):
        """(fd, stat, real path) of a regular file inside the root."""
        opened = _open_real(filename)
        if opened is None:
            return None
        fd, path = opened
        if not self._inside(path, root):
            os.close(fd)
            return None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return None
        return fd, st, path

    def _index(self, ex, directory, root):
        """A directory's first index file, as (fd, stat, name); PATH_INFO
        gets its name, as uWSGI appends it (for the app too, when the
        method is not one to serve)."""
        directory = os.path.realpath(directory)
        if not self._inside(directory, root):
            return None
        for index in self.index:
            name = os.path.join(directory, index)
            if not os.path.isfile(name):
                continue
            opened = self._open_inside(name, root)
            if opened is None:
                return None
            _append_to_path_info(ex, index)
            fd, st, _ = opened
            # uWSGI's name for the file (its type, its variants) is the
            # index's, even where a symlink leads elsewhere in the root.
            return fd, st, name
        return None

    def _inside(self, path, root):
        """Whether the real path lies in the root or a static-safe path;
        uWSGI's line if not."""
        if _under(path, root):
            return True
        for safe in self.safe:
            if _under(path, safe):
                return True
        log.log(f"[uwsgi-fileserve] security error: {path} is not under "
                f"{root} or a safe path")
        return False

    def _static_file(self, ex, fd, st, path, root):
        """The StaticFile of an open file, or of its FILE.br or FILE.gz
        for a client that takes it; `root`: where a variant must lie (as
        the file itself, README difference 10), None for a `static:`
        route's file, whose variant must be its own real path."""
        content_type = self._content_type(path)
        encoding = None
        accept_encoding = ex.vars.get("HTTP_ACCEPT_ENCODING", "")
        if self.wants_variant and accept_encoding and \
                self.wants_variant(path):
            for coding, suffix in accepted_variants(accept_encoding):
                variant = self._variant(path + suffix, root)
                if variant:
                    os.close(fd)
                    fd, st = variant
                    path, encoding = path + suffix, coding
                    break
        found = StaticFile(path, fd, st.st_size, st.st_mtime, content_type,
                           encoding, serve_header=self.serve_header)
        if self.expires:
            found = self._with_expires(ex, found)
        return found

    def _variant(self, name, root):
        """(fd, stat) of the variant `name` where it is a regular file
        that lies inside `root` (or is `name` itself), else None."""
        opened = _open_real(name)
        if opened is None:
            return None
        fd, real = opened
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and (
                real == name if root is None else self._inside(real, root)):
            return fd, st
        os.close(fd)
        return None

    def _with_expires(self, ex, found):
        """As uWSGI: the name matched is the one sent (FILE.gz), and
        `now` is the second the request began."""
        now, mtime = int(ex.start), int(found.mtime)
        subjects = {"filename": found.path,
                    "path_info": ex.vars.get("PATH_INFO", ""),
                    "uri": ex.uri}
        by_type = None
        if found.content_type:
            by_type = self.expires.type_header(found.content_type, now,
                                               mtime)
        return dataclasses.replace(
            found, expires=tuple(self.expires.headers(subjects, now, mtime)),
            type_expires=by_type)

    def _content_type(self, path):
        # Without check-static uWSGI reads no mime file, and a `static:`
        # route's file goes out without a Content-Type.
        if self.types is None:
            return None
        return self.types.get(os.path.splitext(path)[1])


def _serve_header(mode):
    """file-serve-mode's header, or None where the option is not set.
    A value uWSGI does not know is refused: uWSGI would send the files
    itself without a word."""
    if mode is None:
        return None
    try:
        return SERVE_HEADERS[mode.lower()]
    except KeyError:
        raise ConfigError(f"invalid file-serve-mode value: {mode} (write "
                          f"x-sendfile, x-accel-redirect or nginx)",
                          option="file-serve-mode") from None


def _variant_rule(config):
    """Whether to look for a file's compressed variant, by its name (None:
    never), as uWSGI decides it: every file (static-gzip-all), else one under a
    static-gzip-dir (or -prefix: a plain prefix of the name), one
    ending with a static-gzip-ext (or -suffix), or one a static-gzip
    regexp finds."""
    if config["static-gzip-all"]:
        return _always
    prefixes = tuple(config["static-gzip-dir"])
    suffixes = tuple(config["static-gzip-ext"])
    patterns = [_compiled(entry) for entry in config.entries
                if not entry.placeholder
                and registry.lookup(entry.key) is _GZIP_REGEXP]
    if not (prefixes or suffixes or patterns):
        return None

    def wants(path):
        return (path.startswith(prefixes) or path.endswith(suffixes)
                or any(pattern.search(path) for pattern in patterns))
    return wants


def _compiled(entry):
    try:
        return pcre.compile(entry.value)
    except re.error as e:
        raise ConfigError(f"invalid regexp \"{entry.value}\": {e} (write "
                          f"a PCRE regexp for the files' names)",
                          entry.file, entry.line, entry.key) from None


def _always(path):
    return True


def _nothing(ex):
    """The lookup where no static option names a place for files."""
    return None


def _fs_name(path_info):
    """A file name from PATH_INFO, which holds the request's bytes as
    latin-1: those bytes (UTF-8, most often) as the file system names."""
    if path_info.isascii():
        return path_info
    return os.fsdecode(path_info.encode("latin-1"))


def _under(path, root):
    return path == root or path.startswith(root.rstrip("/") + "/")


def _append_to_path_info(ex, index):
    """PATH_INFO with the index file's name, a '/' between where needed,
    added as a new var (uWSGI's log line counts it)."""
    path_info = ex.vars.get("PATH_INFO", "")
    if path_info and not path_info.endswith("/"):
        path_info += "/"
    path_info += os.fsencode(index).decode("latin-1")
    ex.add_var("PATH_INFO", path_info)


def _resolved_root(var):
    """The real path of the root a request's var names (its bytes as
    latin-1); if there is none, uWSGI's line and Unanswered."""
    if len(var) > PATH_MAX:
        log.log(f"invalid path size: {len(var)} (max {PATH_MAX})")
        raise Unanswered
    # As C reads it, the path ends at a NUL (the front server's to send,
    # not the client's).
    var = var.partition("\0")[0]
    try:
        return real_path(_fs_name(var))
    except OSError as e:
        log.log_sent(f"realpath() of {var} failed: {e.strerror} "
                     f"[core/utils.c line 3640]")
        raise Unanswered from None


def real_path(path):
    """What C's realpath() finds: one open and its readlink, where
    realpath() lstats each component; a name too long for the kernel
    (4096 bytes, which realpath() takes, folding its `//`) the long
    way."""
    try:
        fd = os.open(path, os.O_PATH)
    except OSError as e:
        if e.errno != errno.ENAMETOOLONG:
            raise
        return os.path.realpath(path, strict=True)
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


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


def _open_real(path):
    """(fd, real path) of the file `path` names, open for reading, or
    None.  A name the kernel can walk with no symlink on it is its own
    real path (openat2.py): that saves the readlink of /proc/self/fd,
    2 us of a 17 us look-up."""
    name = _lexical(path)
    if name is not None:
        fd = _openat2.open_no_symlinks(name)
        if fd >= 0:
            return fd, name
    fd = _open(path)
    if fd is None:
        return None
    return fd, _opened_path(fd, path)


def _import_openat2():
    global _openat2
    if _openat2 is None:
        from ugu.vassal import openat2
        _openat2 = openat2


def _lexical(path):
    """The path with its empty components dropped, which is its real
    path where no symlink lies on it; None where that cannot be read off
    the name: a relative one, a `.` or `..` in it (or any component that
    starts with a dot), a NUL, or the kernel's call missing."""
    if not (_openat2.AVAILABLE and path[:1] == "/") or "/." in path or \
            "\0" in path or path.endswith("/"):
        return None
    while "//" in path:
        path = path.replace("//", "/")
    return path


# The compressed variants uWSGI looks for, in its order of preference:
# (content coding, file suffix, the names a client accepts it by).
_VARIANTS = (("br", ".br", ("br",)), ("gzip", ".gz", ("gzip", "x-gzip")))


def accepted_variants(accept_encoding):
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
