"""The one error type of the configuration layer.

It names where the problem is (file and line, or the command line) and the
option involved, so that a user can go straight to it.
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
