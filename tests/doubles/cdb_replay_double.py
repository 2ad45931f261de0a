#!/usr/bin/env python3
"""TEST DOUBLE for cdb.exe: answers over pipes from a transcript. Not a debugger.

It exists so the cdb driver can be tested on Linux, where no cdb.exe runs. It makes no
claim about real cdb: its transcripts (tests/transcripts/cdb-replay/) are written from
Microsoft's documentation and the protocol brief, and are labelled so.

Environment:
  CDB_REPLAY_SCENARIO  transcript(s) to play, joined by os.pathsep (required); a section of a
                       later file replaces the sections of the same kind and key before it
  CDB_REPLAY_DUMP_SCENARIO  transcript(s) to play instead when started with '-z <dump>' (opening
                       a dump); '{dump}' in its startup text is the dump's path
  CDB_REPLAY_IGNORE_QUIT=1  'qd' does nothing (a hung cdb)
  CDB_REPLAY_LOG       file to which argv and every input line are appended as JSON lines
  CDB_REPLAY_CHUNK     write output in pieces of this many bytes (tests split markers)

Transcript format: lines before the first section that start with '#' are comments.
A section starts with a header line '=== <kind>[: <text>] [opt,opt=value,...]':
  === startup [opts]              printed at start, then the prompt
  === command: <cmd> [opts]       the reply to the exact command <cmd> (queued: a second
                                  section for the same command answers its second use;
                                  the last one repeats)
  === command-prefix: <p> [opts]  the reply to any command starting with <p>; {arg} in
                                  the reply is the rest of the command, quotes removed
  === interrupt                   printed when SIGINT arrives while the target "runs"
Options: hang (run until SIGINT), delay=<s>, prompt=<0:007> (prompt from then on),
write-dump / write-empty (create the file {arg}), die (exit at once), exit=<n>
(startup: print, then exit), no-prompt (startup: print, never prompt), ignore-quit
(startup: qd does nothing).

Built in: '.printf "<fmt>", args' with %c/%s/%d/%x and \\n; 'qd' ends with status 0;
'q' logs that the target would have been killed and ends; sx*, .prompt_allow,
.outmask, !sym print nothing; anything else unknown gets a syntax-error line.

Dumps: a 'write-dump' section creates the file it is asked to write (the path after
'.dump /ma', quotes removed) with a few bytes that start with 'MDMP'; only sections whose
transcript says the dump was written carry that option. With '-z <dump>' the double first
looks at the file: missing, or not starting with 'MDMP', it prints an error in the form seen in
public WinDbg bug reports (microsoft/WinDbg-Feedback#98, #362: 'Could not open dump file [<path>],
Win32 error 0n87') and exits 1; else it plays CDB_REPLAY_DUMP_SCENARIO. In '-z' mode the log
entries are 'z_in' (not 'in') and 'q' is the normal way out (there is no live target).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time

HEADER = re.compile(r"^=== (startup|interrupt|command|command-prefix)(?:: (.*?))?(?: \[([^\]]*)\])?\s*$")
SILENT = ("sx", ".prompt_allow", ".outmask", "!sym", ".lines", ".symfix", ".sympath")


class Section:
    def __init__(self, kind: str, key: str, opts: dict[str, str]) -> None:
        self.kind = kind
        self.key = key
        self.opts = opts
        self.lines: list[str] = []

    @property
    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)


def load(path: str) -> list[Section]:
    sections: list[Section] = []
    with open(path, encoding="utf-8") as f:
        for raw in f.read().splitlines():
            m = HEADER.match(raw)
            if m:
                opts: dict[str, str] = {}
                for opt in (m.group(3) or "").split(","):
                    opt = opt.strip()
                    if opt:
                        name, _, value = opt.partition("=")
                        opts[name] = value
                sections.append(Section(m.group(1), (m.group(2) or "").strip(), opts))
            elif sections:
                sections[-1].lines.append(raw)
    for s in sections:  # drop trailing blank lines that only separate sections
        while s.lines and not s.lines[-1].strip():
            s.lines.pop()
    return sections


class Double:
    def __init__(self, sections: list[Section], dump: str | None = None) -> None:
        self.sections = sections
        self.dump = dump  # the '-z' path when opening a dump
        self.prompt = "0:000> "
        self.interrupted = False
        self.used: dict[int, bool] = {}
        self.chunk = int(os.environ.get("CDB_REPLAY_CHUNK", "0") or 0)
        startup = [s for s in sections if s.kind == "startup"]
        self.startup = startup[0] if startup else Section("startup", "", {})
        self.ignore_quit = (
            "ignore-quit" in self.startup.opts or os.environ.get("CDB_REPLAY_IGNORE_QUIT") == "1"
        )
        signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum: int, frame: object) -> None:
        self.interrupted = True

    # -- output -------------------------------------------------------------------------------
    def out(self, text: str) -> None:
        data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("cp1252", errors="replace")
        if self.chunk > 0:
            for i in range(0, len(data), self.chunk):
                os.write(1, data[i : i + self.chunk])
                time.sleep(0.0005)
        else:
            os.write(1, data)

    def show_prompt(self) -> None:
        self.out(self.prompt)

    # -- behaviour ------------------------------------------------------------------------------
    def find(self, command: str) -> tuple[Section | None, str]:
        exact = [s for s in self.sections if s.kind == "command" and s.key == command]
        if exact:
            for s in exact:
                if not self.used.get(id(s)):
                    self.used[id(s)] = True
                    return s, ""
            return exact[-1], ""
        for s in self.sections:
            if s.kind == "command-prefix" and command.startswith(s.key):
                return s, command[len(s.key) :].strip().strip('"')
        return None, ""

    def wait_for_interrupt(self, seconds: float | None) -> bool:
        """Sleep until SIGINT (True) or until ``seconds`` pass (False)."""
        end = None if seconds is None else time.monotonic() + seconds
        while not self.interrupted:
            if end is not None and time.monotonic() >= end:
                return False
            time.sleep(0.01)
        self.interrupted = False
        return True

    def printf(self, command: str) -> None:
        m = re.match(r'^\.printf\s+"((?:[^"\\]|\\.)*)"\s*(?:,\s*(.*))?$', command)
        if not m:
            self.out(f"       ^ Syntax error in '{command}'\n")
            return
        fmt = m.group(1).replace("\\n", "\n").replace('\\"', '"')
        args = [a.strip() for a in (m.group(2) or "").split(",") if a.strip()]

        def conv(match: re.Match[str]) -> str:
            if match.group(0) == "%%":
                return "%"
            value = args.pop(0) if args else "0"
            number = int(value, 16)  # cdb's default radix is 16
            spec = match.group(1)
            if spec == "c":
                return chr(number)
            if spec == "d":
                return str(number)
            return f"{number:x}"

        self.out(re.sub(r"%([cdxs])|%%", conv, fmt))

    def handle(self, command: str) -> bool:
        """Answer one input line. False: end the process."""
        if command.startswith(".printf"):
            self.printf(command)
            return True
        if command == "qd":
            return self.ignore_quit
        if command in ("q", "qq"):
            if self.dump is None:
                log({"event": "q-sent: a real cdb without -pd would end the target here"})
            self.out("quit:\n")
            return False
        section, arg = self.find(command)
        if section is None:
            if command.startswith(SILENT) or not command:
                return True
            if command.startswith("!"):
                self.out(f"No export {command[1:].split()[0]} found\n")
            else:
                self.out(f"       ^ Syntax error in '{command}'\n")
            return True
        opts = section.opts
        if "die" in opts:
            os._exit(3)
        if "hang" in opts:
            self.wait_for_interrupt(None)
            self.out(self.interrupt_text())
            return True
        if "delay" in opts:
            if self.wait_for_interrupt(float(opts["delay"])):
                return True  # cancelled like a Ctrl+C'd command: no output
        if "write-dump" in opts or "write-empty" in opts:
            if not os.path.exists(arg):
                with open(arg, "wb") as f:
                    if "write-dump" in opts:
                        f.write(b"MDMP" + b"\0" * 60)
        self.out(
            section.text.replace("{arg}", arg)
            + ("\n" if section.text and not section.text.endswith("\n") else "")
        )
        if "prompt" in opts:
            self.prompt = opts["prompt"] + "> "
        return True

    def interrupt_text(self) -> str:
        for s in self.sections:
            if s.kind == "interrupt":
                if "prompt" in s.opts:
                    self.prompt = s.opts["prompt"] + "> "
                return s.text
        return ""

    def run(self) -> int:
        self.out(self.startup.text.replace("{dump}", self.dump or ""))
        if "exit" in self.startup.opts:
            return int(self.startup.opts["exit"] or 1)
        if "no-prompt" in self.startup.opts:
            self.wait_for_interrupt(None)
            return 0
        if "prompt" in self.startup.opts:
            self.prompt = self.startup.opts["prompt"] + "> "
        self.show_prompt()
        while True:
            raw = sys.stdin.buffer.readline()
            if not raw:
                return 0
            command = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            log({"z_in" if self.dump is not None else "in": command})
            self.interrupted = False
            if not self.handle(command.strip()):
                return 0
            self.show_prompt()


def log(entry: dict[str, object]) -> None:
    path = os.environ.get("CDB_REPLAY_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")


def dump_argument(argv: list[str]) -> str | None:
    """The path after '-z', or None when not opening a dump."""
    if "-z" in argv:
        i = argv.index("-z")
        return argv[i + 1] if i + 1 < len(argv) else ""
    return None


def refuse_dump(path: str) -> int | None:
    """The double's answer to a dump it cannot 'open': print and return 1; None when it can."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        head = None
    if head == b"MDMP":
        return None
    out = [f"Loading Dump File [{path}]"]
    if head is None:
        out += [
            f"Could not open dump file [{path}], Win32 error 0n2",
            '    "The system cannot find the file specified."',
        ]
    else:
        out += [
            "Could not match Dump File signature - invalid file format",
            f"Could not open dump file [{path}], Win32 error 0n87",
            '    "The parameter is incorrect."',
        ]
    os.write(1, ("\r\n".join(out) + "\r\n").encode("cp1252", errors="replace"))
    return 1


def main() -> int:
    argv = sys.argv[1:]
    dump = dump_argument(argv)
    log({"argv": argv, "pid": os.getpid(), **({"dump": dump} if dump is not None else {})})
    scenario = os.environ.get("CDB_REPLAY_SCENARIO")
    if dump is not None:
        scenario = os.environ.get("CDB_REPLAY_DUMP_SCENARIO") or scenario
    if not scenario:
        sys.stderr.write("cdb_replay_double: set CDB_REPLAY_SCENARIO to a transcript\n")
        return 2
    if dump is not None:
        refused = refuse_dump(dump)
        if refused is not None:
            return refused
    sections: list[Section] = []
    for path in scenario.split(os.pathsep):
        overlay = load(path)
        keys = {(s.kind, s.key) for s in overlay}
        sections = [s for s in sections if (s.kind, s.key) not in keys] + overlay
    return Double(sections, dump).run()


if __name__ == "__main__":
    sys.exit(main())
