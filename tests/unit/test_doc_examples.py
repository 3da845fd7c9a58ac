"""Every shell example in README.md and docs/*.md is checked against the real CLI.

Fenced blocks tagged ``sh``, ``bash``, ``console`` or ``shell`` are extracted (and
``cron`` blocks, whose command follows the five schedule fields). Each block has a mark,
written as an HTML comment on a line before its fence (only blank lines and other
one-line HTML comments between):

- ``<!-- doc-test: parse-only -->`` (the default): every ``osp-ops ...`` line is parsed
  by the click command tree built from ``osp_ops.cli.main.app``. The command path must
  exist and every option, flag and argument must be accepted (types, required arguments,
  slug checks), but nothing is run. Placeholders (``<slug>``, ``<id>``, ``SLUG``, ``ID``)
  are arguments. Other lines (``scripts/...``, ``export``, ``eval``, ``curl``, comments)
  are not checked. A block with no ``osp-ops`` line must be marked ``skip``.
- ``<!-- doc-test: skip <reason> -->``: not checked; the reason is required.
- ``<!-- doc-test: run -->``: would run the block against the test services. Not
  implemented yet, so no block may carry it: the count of "run" blocks is zero for now.

The last test prints the number of blocks and commands by mark. ``docs/cli.md`` is
generated (see test_cli_docs.py) and holds no fenced block; it is scanned like the rest.
"""

from __future__ import annotations

import os
import re
import shlex
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import typer
import typer.core
from typer._click.exceptions import ClickException, UsageError  # typer vendors click

from osp_ops.cli.main import State, app
from osp_ops.domain.errors import OspOpsError

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = {"sh", "bash", "console", "shell"}
CRON = {"cron", "crontab"}
MARKS = ("run", "parse-only", "skip")

_FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w-]*)")
_MARK = re.compile(r"^\s*<!--\s*doc-test:\s*([\w-]+)\s*(.*?)\s*-->\s*$")
_COMMENT = re.compile(r"^\s*<!--.*-->\s*$")  # other comments may sit between
_CRON_FIELDS = re.compile(r"^\s*(@\w+|(\S+\s+){4}\S+)\s+(?P<command>.*)$")
_CRON_VAR = re.compile(r"^\s*[A-Za-z_]\w*=")
# <slug>, <backup-id>; and whole words SLUG, ID, $SLUG, ${ID}
_ANGLE_PLACEHOLDER = re.compile(r"<[A-Za-z][\w-]*>")
_WORD_PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_]*|\$\{?[A-Za-z_]\w*\}?")
PLACEHOLDER = "example"  # stands for any placeholder: a valid slug, id prefix or name


@dataclass
class Block:
    doc: Path
    line: int  # of the opening fence, 1-based
    lang: str
    lines: list[str] = field(default_factory=list)
    mark: str = "parse-only"
    reason: str = ""

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"

    def commands(self) -> list[tuple[int, list[str]]]:
        """The ``osp-ops`` command lines as (line number, argv without ``osp-ops``)."""
        found = []
        for offset, text in _logical_lines(self.lines):
            if self.lang in CRON:
                if _CRON_VAR.match(text) or text.lstrip().startswith("#"):
                    continue
                m = _CRON_FIELDS.match(text)
                if not m:
                    continue
                text = m["command"]
            elif self.lang == "console":
                if not text.lstrip().startswith("$ "):
                    continue  # output, not a command
                text = text.lstrip()[2:]
            argv = _argv(text)
            if argv and argv[0] == "osp-ops":
                found.append((self.line + 1 + offset, argv[1:]))
        return found


def _logical_lines(lines: list[str]) -> list[tuple[int, str]]:
    """Lines joined across trailing backslashes, each with the offset of its first line."""
    out: list[tuple[int, str]] = []
    start, parts = 0, []
    for i, text in enumerate(lines):
        if not parts:
            start = i
        if text.endswith("\\"):
            parts.append(text[:-1])
            continue
        parts.append(text)
        out.append((start, " ".join(parts)))
        parts = []
    if parts:
        out.append((start, " ".join(parts)))
    return out


def _argv(text: str) -> list[str]:
    """The words of the first simple command of a line (up to a pipe, ``;``, ``&&``,
    a redirection or a comment)."""
    text = _ANGLE_PLACEHOLDER.sub(PLACEHOLDER, text)  # before `<` reads as a redirection
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = []
    try:
        for token in lexer:
            if token and all(c in lexer.punctuation_chars for c in token):
                break
            words.append(PLACEHOLDER if _WORD_PLACEHOLDER.fullmatch(token) else token)
    except ValueError:  # an unclosed quote: not a command line we can read
        return []
    return words


def _blocks(doc: Path) -> list[Block]:
    blocks: list[Block] = []
    current: Block | None = None
    mark: tuple[str, str] | None = None
    for number, text in enumerate(doc.read_text("utf-8").splitlines(), start=1):
        if current is not None:
            if (closing := _FENCE.match(text)) and not closing[2]:
                blocks.append(current)
                current = None
            else:
                current.lines.append(text)
            continue
        fence = _FENCE.match(text)
        if fence:
            current = Block(doc, number, fence[2].lower())
            if mark is not None:
                current.mark, current.reason = mark
            mark = None
            continue
        m = _MARK.match(text)
        if m:
            mark = (m[1], m[2])
        elif text.strip() and not _COMMENT.match(text):
            mark = None  # a mark applies only to the fence that follows it
    assert current is None, f"{doc.relative_to(ROOT)}: unclosed fence at line {current.line}"
    return blocks


ALL_BLOCKS = [b for doc in DOCS for b in _blocks(doc)]
CHECKED = [b for b in ALL_BLOCKS if b.lang in SHELL | CRON]


def _parse(argv: list[str]) -> None:
    """Parse ``osp-ops ARGV`` down the command tree as ``TyperGroup.invoke`` does, without
    invoking any command.

    Raises UsageError (unknown command or option, bad or missing argument, extra
    argument) or OspOpsError (a slug argument that spec validation refuses)."""
    command = typer.main.get_command(app)
    try:
        ctx = command.make_context("osp-ops", list(argv), obj=State())
        while isinstance(command, typer.core.TyperGroup):
            rest = [*ctx._protected_args, *ctx.args]
            if not rest:
                if not command.invoke_without_command:
                    ctx.fail("Missing command.")
                break
            name, sub, rest = command.resolve_command(ctx, rest)
            assert name is not None and sub is not None
            command = sub
            ctx = command.make_context(name, rest, parent=ctx)
    except typer.Exit as e:  # --help (eager) prints and exits 0 while parsing
        if e.exit_code != 0:
            raise UsageError(f"exited {e.exit_code} while parsing") from e


@pytest.fixture
def isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Default settings: no OSP_OPS_* variable, no ./osp-ops.yaml (slug checks read them)."""
    for name in list(os.environ):
        if name.upper().startswith("OSP_OPS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    "line",
    [
        "osp-ops tenant nope",  # no such command
        "osp-ops tenant",  # a group without its command
        "osp-ops tenant show",  # missing argument
        "osp-ops tenant show nanterre lyon",  # extra argument
        "osp-ops tenant show nanterre --bogus",  # no such option
        "osp-ops backup run --all --concurrency two",  # not an integer
        "osp-ops tenant show Nanterre_2",  # a slug spec validation refuses
    ],
)
def test_the_check_refuses_wrong_commands(line: str, isolated_settings: None) -> None:
    with pytest.raises((UsageError, OspOpsError)):
        _parse(_argv(line)[1:])


@pytest.mark.parametrize(
    "line",
    [
        "osp-ops op show <id> | less",
        "osp-ops -v tenant show SLUG > out.txt",
        "osp-ops backup list $SLUG  # a comment",
        "osp-ops backup list --help",
    ],
)
def test_the_check_accepts_placeholders_and_shell(line: str, isolated_settings: None) -> None:
    _parse(_argv(line)[1:])


def test_marks_and_cron_lines(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "<!-- doc-test: skip needs a browser -->\n<!-- other -->\n\n```sh\nosp-ops x\n```\n"
        "<!-- doc-test: skip -->\nA paragraph ends the mark.\n```sh\nosp-ops y\n```\n"
        "```cron\nA=1\n*/5 * * * *  osp-ops worker --once  # queued\n@daily osp-ops op list\n```\n",
        "utf-8",
    )
    first, second, cron = _blocks(doc)
    assert (first.mark, first.reason) == ("skip", "needs a browser")
    assert second.mark == "parse-only"
    assert [argv for _, argv in cron.commands()] == [["worker", "--once"], ["op", "list"]]


def test_blocks_are_found() -> None:
    assert any(b.doc.name == "README.md" for b in CHECKED)
    assert sum(len(b.commands()) for b in CHECKED) >= 20


def test_commands_outside_shell_blocks_are_tagged() -> None:
    """An ``osp-ops`` command line in an untagged fence would escape the checks."""
    stray = [
        f"{b.where}: ```{b.lang}"
        for b in ALL_BLOCKS
        if b.lang not in SHELL | CRON and any(_argv(t)[:1] == ["osp-ops"] for t in b.lines)
    ]
    assert not stray, "tag these blocks ```sh (or mark them): " + ", ".join(stray)


@pytest.mark.parametrize("block", CHECKED, ids=[b.where for b in CHECKED])
def test_block(block: Block, isolated_settings: None) -> None:
    assert block.mark in MARKS, f"{block.where}: unknown doc-test mark {block.mark!r}"
    if block.mark == "skip":
        assert block.reason, f"{block.where}: `doc-test: skip` needs a reason"
        return
    assert block.mark != "run", f"{block.where}: `doc-test: run` is not implemented yet"
    commands = block.commands()
    assert commands, (
        f"{block.where}: no osp-ops command to check; mark it `<!-- doc-test: skip <reason> -->`"
    )
    failures = []
    for number, argv in commands:
        try:
            _parse(argv)
        except (UsageError, OspOpsError) as e:
            message = e.format_message() if isinstance(e, ClickException) else str(e)
            failures.append(
                f"{block.doc.relative_to(ROOT)}:{number}: {shlex.join(argv)}\n    {message}"
            )
    assert not failures, "documented commands the CLI refuses:\n" + "\n".join(failures)


def test_counts_by_mark(capsys: pytest.CaptureFixture[str]) -> None:
    blocks: Counter[str] = Counter()
    commands: Counter[str] = Counter()
    for b in CHECKED:
        blocks[b.mark] += 1
        commands[b.mark] += len(b.commands())
    summary = ", ".join(f"{m}: {blocks[m]} blocks / {commands[m]} commands" for m in MARKS)
    with capsys.disabled():
        print(f"\ndoc examples ({len(CHECKED)} blocks in {len(DOCS)} files): {summary}")
    assert sum(blocks.values()) == len(CHECKED)
