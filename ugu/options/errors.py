"""The error types of the configuration layer.

A ConfigError names where the problem is (file and line, or the command
line) and the option involved, so that a user can go straight to it.
Reading goes on past one, so that a file with several problems is fixed in
one pass: ConfigErrors carries them all, in file order.
"""


class ConfigError(Exception):
    def __init__(self, reason, file=None, line=None, option=None):
        super().__init__(reason)
        self.reason = reason
        self.file = file
        self.line = line
        self.option = option

    def __str__(self):
        where = self.file or "command line"
        if self.line is not None:
            where = f"{where}:{self.line}"
        if self.option:
            return f"{where}: option '{self.option}': {self.reason}"
        return f"{where}: {self.reason}"

    @property
    def errors(self):
        """Every problem this error stands for, one line each."""
        return [self]


class ConfigExit(Exception):
    """The `exit` option, met while the configuration is read: the
    instance ends at once with `status`."""

    def __init__(self, status):
        super().__init__(status)
        self.status = status


class FatalExit(Exception):
    """A failure that ends the instance with `status` in the process ugu
    started as (a fatal hook before the master runs): raised to the
    command line, which then starts fallback-config, as uWSGI's exit
    does."""

    def __init__(self, status):
        super().__init__(status)
        self.status = status


class ConfigErrors(ConfigError):
    """Several problems of one configuration; its file, line and option
    are the first one's, so that a reader of one error still finds it."""

    def __init__(self, errors):
        first = errors[0]
        super().__init__(first.reason, first.file, first.line, first.option)
        self._errors = list(errors)

    def __str__(self):
        return "\n".join(str(e) for e in self._errors)

    @property
    def errors(self):
        return list(self._errors)


def raise_all(errors, order=None):
    """Raise the errors collected, each problem once, sorted by `order`
    (a key of an error) or as they came; nothing when there are none."""
    unique = {}
    for error in errors:
        for one in error.errors:
            unique.setdefault(str(one), one)
    found = sorted(unique.values(), key=order or (lambda error: 0))
    if len(found) == 1:
        raise found[0]
    if found:
        raise ConfigErrors(found)
