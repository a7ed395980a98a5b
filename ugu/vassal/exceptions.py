"""`reload-on-exception` and its `-type`, `-value` and `-repr` forms: a
worker whose app raised ends at once, as uWSGI's does, right after the
traceback and the answer (catch-exceptions' page, or ugu's 500 where
uWSGI sends nothing, DEVIATIONS 9): the request gets no log line, and
the master respawns the worker with uWSGI's line for it.

`reload-on-exception` takes every exception the app raises (or a failed
write of its response, which uWSGI makes the app's exception); it is
then not counted among the app's exceptions, as in uWSGI.  The other
three take those whose message, `str()` of the exception, is one of
their values: uWSGI 2.0 compares the message for all three, even where
the names promise the type (`-type`) or `Type: message` (`-repr`), and
ugu does the same, so that a config reloads where uWSGI's does.
"""

import os
import sys

# The worker's exit code, which the master knows it by: uWSGI's.
EXIT_EXCEPTION = 5
OPTIONS = ("reload-on-exception-type", "reload-on-exception-value",
           "reload-on-exception-repr")


class ExceptionReload:
    def __init__(self, config):
        self.always = config["reload-on-exception"]
        self.messages = frozenset(value for name in OPTIONS
                                  for value in config[name])

    def wanted(self, error):
        """Whether the exception (None: one with no message) ends the
        worker."""
        return self.always or (error is not None and
                               _message(error) in self.messages)


def from_config(config):
    """An ExceptionReload, or None where no option asks for one."""
    if config["reload-on-exception"] or any(config[name]
                                            for name in OPTIONS):
        return ExceptionReload(config)
    return None


def end_worker():
    """End the worker now, with its exit code for the master."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_EXCEPTION)


def _message(error):
    try:
        return str(error)
    except Exception:
        # An exception whose str() fails has no message to match, as
        # in uWSGI.
        return None
