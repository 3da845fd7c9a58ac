"""One readable line of a recorded error, for tables; the full text stays in the record.

An operation's error is often a tool's whole output: a failed Ansible task's message
carries pip's or apt's stdout and stderr, tracebacks included. ``one_line`` keeps what a
person reads first:

- the context: everything up to the failing task (``site.yml failed on host h, task 'T'``),
  else the first line;
- the exception line: the last ``SomethingError: ...`` line (the end of a traceback), else
  the last ``error: ...`` / ``fatal: ...`` / ``E: ...`` line a tool printed, else the
  first line of the detail.

``osp-ops op show <id>`` prints the full text; tables print this line.
"""

from __future__ import annotations

import re

WIDTH = 240

# "<playbook> failed on host <h>, task '<name>': <detail>" (platforms.hosts), possibly
# behind "<kind> failed: " (a phase reason). The task name is a Python repr.
_TASK = re.compile(
    r"""^(?P<context>.*?\btask (?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"))\s*:\s*""", re.S
)
# A Python exception line (the last line of a traceback), dotted names allowed.
_EXCEPTION = re.compile(r"^\s*(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception)(?::\s.*)?$")
# What command-line tools print when they give up (pip, git, apt, helm, ssh).
_TOOL_ERROR = re.compile(r"^\s*(?:error|ERROR|Error|fatal|FATAL|E):\s+\S")
# Prefixes Ansible's modules put before captured streams.
_STREAM_PREFIX = re.compile(r"^\s*(?::?(?:stdout|stderr):\s*)+")


def one_line(text: str | None, *, width: int = WIDTH) -> str:
    """The context and the exception line of ``text``, on one line of at most ``width``."""
    if not text:
        return ""
    text = text.strip()
    m = _TASK.match(text)
    if m:
        context, detail = m.group("context"), text[m.end() :]
    else:
        first, _, detail = text.partition("\n")
        context = first
    line = _exception_line(detail)
    if line and line not in context:
        out = f"{context.rstrip(': ')}: {line}" if context else line
    elif m:
        first_detail = next((s for s in map(_clean, detail.splitlines()) if s), "")
        out = f"{context}: {first_detail}" if first_detail else context
    else:
        out = context
    return _shorten(" ".join(out.split()), width)


def _exception_line(detail: str) -> str | None:
    # " | " joins msg, stderr and stdout in platforms.hosts: each piece is a line here.
    lines = [_clean(s) for line in detail.splitlines() for s in line.split(" | ")]
    for pattern in (_EXCEPTION, _TOOL_ERROR):
        found = [s for s in lines if pattern.match(s)]
        if found:
            return found[-1]
    return None


def _clean(line: str) -> str:
    return _STREAM_PREFIX.sub("", line).strip()


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"
