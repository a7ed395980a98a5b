"""`catch-exceptions`: an app's exception is answered with a page that
describes it, as uWSGI's exceptions catcher writes it: the exception,
its class, its message, the app's frames and every var of the request.
uWSGI calls it discouraged, for testing only: the page shows the client
the request's vars and the code that failed.

The page replaces the 500 of an app that raised before its response
began; after that, the exception is only logged, as in uWSGI.
"""

import traceback

from ugu import log

STATUS = "500 Internal Server Error"
HEADERS = [("Content-Type", "text/plain")]
# What uWSGI writes for a part it could not get.
NOT_AVAILABLE = "-Not available-"


def answer(ex, error):
    """The page, where the response has not begun."""
    if not ex.headers_sent:
        ex.respond(STATUS, HEADERS, page(ex, error))


def page(ex, error):
    kind, message = class_name(type(error)), _message(error)
    described = NOT_AVAILABLE if message is None else f"{kind}: {message}"
    text = (f'uWSGI exceptions catcher for "{ex.method} {ex.uri}" '
            f'(request plugin: "python", modifier1: {ex.modifier1})\n\n'
            f"Exception: {described}\n\n"
            f"Exception class: {kind}\n\n"
            f"Exception message: "
            f"{NOT_AVAILABLE if message is None else message}\n\n"
            f"Backtrace:\n{_backtrace(error)}\n\n")
    variables = "".join(f"{key} = {value}\n"
                        for key, value in ex.vars.items())
    return (text.encode("utf-8", "backslashreplace")
            + variables.encode("latin-1", "replace"))


def class_name(kind):
    """uWSGI's name for an exception class: its module's, a dot, its
    own (builtins.ValueError)."""
    return f"{kind.__module__}.{kind.__name__}"


def _message(error):
    try:
        return str(error)
    except Exception:
        # A str() that fails leaves no message, as in uWSGI.
        return None


def _backtrace(error):
    """One line per frame of the app's (ugu's own are left out, as the
    log's traceback leaves them), outermost first."""
    frames = log.app_frames(traceback.extract_tb(error.__traceback__))
    if not frames:
        return NOT_AVAILABLE
    lines = []
    for frame in frames:
        code = f'text/code: "{frame.line}" ' if frame.line else ""
        lines.append(f'filename: "{frame.filename}" line: {frame.lineno} '
                     f'function: "{frame.name}" {code}\n')
    return "".join(lines)
