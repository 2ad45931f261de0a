"""Pure parsers: SOS and cdb text -> pydbgauto.models objects. No I/O, any OS.

Every parser takes the text of one reply (a prompt echo line, symbol-loader noise, CRLF
and ``...`` elision lines are tolerated) and either returns an object or raises:

- ``pydbgauto.SosError`` when SOS says it could not run at all (DAC not loaded, extension
  crash, no runtime) or, for ``pe``, that the object is not an exception;
- ``pydbgauto.ParseError`` when the text is not the report the parser takes.

A stack SOS could not walk is not an exception: ``ManagedStack.error`` holds the text.
``parse_pe`` returns None for "There is no current managed exception on this thread".
"""

from pydbgauto.sos.clrstack import parse_clrstack, parse_clrstack_all
from pydbgauto.sos.dump_reply import parse_dump_result
from pydbgauto.sos.events import parse_events
from pydbgauto.sos.pe import parse_pe
from pydbgauto.sos.threads import parse_threads

__all__ = [
    "parse_clrstack",
    "parse_clrstack_all",
    "parse_dump_result",
    "parse_events",
    "parse_pe",
    "parse_threads",
]
