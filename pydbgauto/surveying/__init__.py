"""Survey: what does a process throw? Watch every exception for a while, dump nothing, and summarise.

    import pydbgauto as pda
    result = pda.survey(pid=1234, seconds=60)
    print(result)                       # rows by type, message pattern and throw site, with counts and rates
    print(result.watch_command(1))      # the `pydbgauto watch ...` line that dumps row 1's exceptions

From the shell: ``pydbgauto survey (--pid N | --name X) --seconds S [--json]``.

A survey is a ``watch()`` whose predicate never matches and that runs in Python (so that every stop comes
back with its parsed ``pe`` and ``clrstack``): every first-chance exception stops the whole process for
about 0.1 s while SOS reads it (docs/linux.md, "What it costs"). The rates it reports are those of the
process under the debugger.

Messages are grouped by pattern: GUIDs, hex numbers (``0x1f``, and runs of 8+ hex digits with a digit in
them) and decimal numbers are folded to ``<guid>``, ``<hex>`` and ``<n>`` (:func:`fold_message`); the
suggested ``--message`` regex matches every message of the pattern (:func:`message_regex`).

The stages: ``patterns`` (folding, pure), ``summary`` (the result and :func:`summarise`, pure), ``view``
(text and HTML), ``run`` (:func:`survey`), ``command`` (the subcommand). The package is ``surveying``, not
``survey``, so that ``pda.survey`` stays the function.
"""

from pydbgauto.surveying.command import register
from pydbgauto.surveying.patterns import fold_message, message_regex
from pydbgauto.surveying.run import COST_WARNING, SurveyCostWarning, survey
from pydbgauto.surveying.summary import SurveyCount, SurveyResult, SurveyRow, summarise
from pydbgauto.surveying.view import summary_head, summary_text, survey_html

__all__ = [
    "COST_WARNING",
    "SurveyCostWarning",
    "SurveyCount",
    "SurveyResult",
    "SurveyRow",
    "fold_message",
    "message_regex",
    "register",
    "summarise",
    "summary_head",
    "summary_text",
    "survey",
    "survey_html",
]
