"""`master-fifo`: one-letter commands to the master through a named pipe.

The letters are uWSGI's: `r` graceful reload, `R` brutal reload, `w`
reload the workers gracefully, `W` brutally, `c` chain reload, `q`
graceful shutdown, `Q` brutal shutdown, `s` print the statistics, `l`
reopen the logto file, `L` rotate it, `+` and `-` one worker more or
fewer at the cheaper's next check, `B` call the Emperor for
reinforcements (vassal-sos).  The fifo is opened read-write, so that it never reads end-of-file between two
writers.
"""

import os
import stat

from ugu import log
from ugu.options.errors import ConfigError

READ_SIZE = 4096


class MasterFifo:
    def __init__(self, path):
        self.path = path
        if os.path.exists(path) and not stat.S_ISFIFO(os.stat(path).st_mode):
            raise ConfigError(f"{path} exists and is not a fifo",
                              option="master-fifo")
        if os.path.exists(path):
            os.unlink(path)
        try:
            os.mkfifo(path)
        except OSError as e:
            raise ConfigError(f"mkfifo() {path}: {e.strerror}",
                              option="master-fifo") from None
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)

    def fileno(self):
        return self.fd

    def commands(self):
        """The letters written since the last call, in order."""
        try:
            data = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return ""
        return data.decode("latin-1")

    def close(self):
        os.close(self.fd)


def dispatch(master, letters):
    """Run each known letter's command; say so for the others."""
    table = {
        "r": lambda: master.begin_reload(graceful=True),
        "R": lambda: master.begin_reload(graceful=False),
        "w": lambda: master.reload_workers(),
        "W": lambda: master.reload_workers(brutal=True),
        "c": lambda: master.chain.start(announce=True),
        "q": lambda: master.begin_shutdown(graceful=True,
                                           reason="graceful shutdown "
                                                  "triggered..."),
        "Q": lambda: master.begin_shutdown(),
        "s": lambda: master.print_stats(),
        "l": master.want_log_reopen,
        "L": master.want_log_rotation,
        "S": master.toggle_subscriptions,
        "+": master.cheaper_more,
        "-": master.cheaper_fewer,
        "B": master.sos,
    }
    for letter in letters:
        if letter in table:
            table[letter]()
        elif not letter.isspace():
            log.log(f"[master-fifo] unknown command '{letter}'")
