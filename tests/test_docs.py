"""The docs stay true: the CLI reference covers every option, the README is a short front page whose
links and commands all exist, and every command line shown in the docs uses real options."""
from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import click
import pytest

from seq2seq_export.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CLI_PAGE = DOCS / "reference" / "cli.md"
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
COMMANDS = {f"s2s-{name}": command for name, command in main.commands.items()}
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
SEPARATORS = re.compile(r"\s(?:\||&&|;|<|>|2>)\s|\s#\s")


def options(command: click.Command) -> set[str]:
    """Every flag spelling of every option, e.g. {'--bundle', '--bidirectional', '--no-bidirectional'}."""
    return {opt for p in command.params if isinstance(p, click.Option) for opt in p.opts + p.secondary_opts}


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, re.M))


def command_lines(markdown: str) -> list[str]:
    """Command lines inside fenced blocks: `$ ` prompts stripped, continuation lines joined."""
    lines = []
    for block in FENCE.findall(markdown):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ").removeprefix(".venv/bin/")
            if line.startswith(("s2s-", "make ", "python -m seq2seq_export ")):
                lines.append(line)
    return lines


def test_cli_reference_lists_every_option_of_every_command():
    markdown = pytest.importorskip("markdown")
    pytest.importorskip("mkdocs_click")
    page = CLI_PAGE.read_text(encoding="utf-8")
    documented = set(re.findall(r":command: (\w+)", page))
    assert documented == {c.callback.__name__ for c in main.commands.values()}, "one mkdocs-click directive per command"
    html = markdown.Markdown(extensions=["mkdocs-click", "toc", "pymdownx.superfences"]).convert(page)
    sections = dict(re.findall(r'<h2 id="([\w-]+)">.*?</h2>(.*?)(?=<h2 |\Z)', html, re.S))
    for name, command in COMMANDS.items():
        assert name in sections, f"{name} has no section in the CLI reference"
        missing = [o for o in sorted(options(command)) if not re.search(rf"(?<![\w-]){o}(?![\w-])", sections[name])]
        assert not missing, f"{name}: options missing from the generated CLI reference: {missing}"


def test_readme_is_a_front_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move detail into docs/"


def test_readme_links_exist_and_docs_links_are_site_pages():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for target in LINK.findall(README.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = target.split("#")[0]
        assert (ROOT / path).exists(), f"README.md links to {target}, which does not exist"
        if path.startswith("docs/"):
            page = path.removeprefix("docs/")
            in_nav = page.endswith(".md") and f": {page}\n" in nav
            assert in_nav, f"README.md links to {target}, not a page in mkdocs.yml's nav"


SHOWN = [README, *sorted(DOCS.rglob("*.md")), *sorted(ROOT.glob("runtimes/*/README.md"))]


@pytest.mark.parametrize("doc", SHOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_commands_shown_name_real_commands_targets_and_options(doc):
    targets = make_targets()
    for line in command_lines(doc.read_text(encoding="utf-8")):
        words = shlex.split(SEPARATORS.split(line)[0], comments=True)
        if words[0] == "make":
            unknown = [w for w in words[1:] if "=" not in w and w not in targets]
            assert not unknown, f"{doc.name}: `{line}` names no Makefile target {unknown}"
            continue
        if words[0] == "python":
            words = [f"s2s-{words[3]}"] + words[4:] if len(words) > 3 else ["s2s-"]
        assert words[0] in SCRIPTS, f"{doc.name}: `{line}`: {words[0]} is not a console script"
        known = options(COMMANDS[words[0]]) | {"--help", "-h"}
        unknown = [w for w in words[1:] if w.startswith("--") and w.split("=")[0] not in known]
        assert not unknown, f"{doc.name}: `{line}` uses options {words[0]} does not have: {unknown}"
