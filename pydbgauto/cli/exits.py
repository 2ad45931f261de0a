"""The exit codes of the ``pydbgauto`` command (docs/cli.md)."""

EXIT_OK = 0  # done (watch: at least one capture; analyze: read, and matching its record if any)
EXIT_NO_MATCH = 1  # no match before the time limit or the target's exit (analyze: NOT matching its record)
EXIT_USAGE = 2  # usage or bad input
EXIT_TARGET = 3  # the target cannot be debugged
EXIT_DEBUGGER = 4  # the debugger, SOS or a dump reader is missing or failed (or hung)
EXIT_DUMP = 5  # a dump could not be written, verified or read
EXIT_INTERRUPTED = 130  # Ctrl-C; ended by signal N is 128 + N
