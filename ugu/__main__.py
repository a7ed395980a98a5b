"""`python -m ugu` and the `ugu` command."""

import sys


def run():
    try:
        from ugu.cli import main
    except KeyboardInterrupt:
        # Ctrl-C while ugu is still being imported, in its first tenth of
        # a second (a vassal's too: Ctrl-C reaches the whole group): end
        # as main() ends on Ctrl-C, without a traceback.
        return 0
    code = main()
    from ugu import log
    log.flush_loggers()
    return code


if __name__ == "__main__":
    sys.exit(run())
