"""The exit codes every otterbench command uses: one table, quoted by `--help` and docs."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """Process exit codes."""

    OK = 0
    FAILED = 1  # an arm failed, or a check found a regression
    BAD_INPUT = 2  # options, suite, prompts, models or files are wrong; nothing was measured
    INCONCLUSIVE = 3  # a check could not decide: too little data for its limits, or a run partial/interrupted
    INTERRUPTED = 130  # Ctrl-C; what finished is kept
    TERMINATED = 143  # SIGTERM; what finished is kept


EXIT_HELP = (
    "Exit codes: 0 ok, 1 an arm failed or a check found a regression, 2 bad input, "
    "3 a check was inconclusive (the runs cannot detect a limit, or one is partial or interrupted), "
    "130 interrupted (Ctrl-C), 143 terminated (SIGTERM); finished work is kept on 1, 130 and 143."
)
