"""uWSGI's log routes: `log-route = NAME REGEX` sends the lines REGEX
matches to the logger named NAME (a `logger = NAME KIND:ARGS` line)
instead of the log; `log-req-route = NAME REGEX` does so for request
lines.

A line several routes match goes to each of their loggers.  A line none
matches goes where it would without routes: a message to the logger
without a name, or to the log; a request line to the req-logger, or to
the log as it was before any logger took it, never to the loggers of
messages, as in uWSGI.  A route's logger encodes with the encoders
written without a name and with those that name it (see logencoders).

The log master routes messages, since it reads every process's lines;
the worker that writes a request line routes it, one write to each
logger, as uWSGI's master would have.
"""

import re

from ugu import log, pcre
from ugu.options.errors import ConfigError
from ugu.vassal import logencoders


def regexp(pattern, option):
    """A regexp matched on a line's bytes, as uWSGI's PCRE matches them."""
    try:
        return pcre.compile(pattern.encode())
    except re.error as e:
        raise ConfigError(f'invalid regexp "{pattern}": {e}',
                          option=option) from None


def check(config):
    """Refuse the routes ugu cannot follow, before any file is made."""
    for option in ("log-route", "log-req-route"):
        _parsed(config, option)


def routes(config, option, encoders_option):
    """The option's routes, in order: (regexp, the descriptor of its
    logger, the encoders of encoders_option for that logger)."""
    return [(pattern, log.named_logger(name),
             logencoders.chain(config, encoders_option, name))
            for name, pattern in _parsed(config, option)]


def _parsed(config, option):
    """The option's routes: (the name of a logger, regexp)."""
    names = log.logger_names(config)
    found = []
    for spec in config[option]:
        name, space, pattern = spec.partition(" ")
        if not space:
            raise ConfigError(f"'{spec}' is not NAME REGEX (a logger's "
                              "name, a space, a regexp)", option=option)
        if name not in names:
            # uWSGI drops the route: its lines go where unrouted ones go.
            raise ConfigError(f"'{spec}': no `logger = {name} KIND:ARGS` "
                              f"line names a logger '{name}' (uWSGI looks "
                              "the name up among the `logger` lines, "
                              "req-logger's too)", option=option)
        found.append((name, regexp(pattern, option)))
    return found


def routed(found, line):
    """Whether a route takes the line (bytes, with its end): then it is
    written to the logger of each route that matches it."""
    return send(matching(found, line), line)


def matching(found, line):
    """The routes of `found` whose regexp matches the line."""
    return [route for route in found if route[0].search(line)]


def send(taken, line):
    """Write the line to the logger of each route taken; whether there
    was one."""
    for _, fd, encoders in taken:
        log.send(fd, logencoders.encode(encoders, line))
    return bool(taken)


def request_sender(config):
    """The function that writes request lines where log-req-route and
    log-req-encoder send them (see log.send_requests), or None where
    they are written as they are to the request log."""
    found = routes(config, "log-req-route", "log-req-encoder")
    # As uWSGI, request lines are encoded where they have a log of their
    # own; without one they are messages, which log-encoder encodes.
    encoders = logencoders.chain(config, "log-req-encoder") \
        if config["req-logger"] or found else []
    if not found and not encoders:
        return None
    fd = log.requests_fd()

    def send(line):
        if not routed(found, line):
            log.send(fd, logencoders.encode(encoders, line))
    return send
