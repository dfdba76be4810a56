"""The docs stay true: the CLI reference covers every option, the README is a short front page whose
links and commands all exist, and every command line shown in the docs uses real options."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
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
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
SEPARATORS = re.compile(r"\s(?:\||&&|;|<|>|2>)\s|\s#\s")


def options(command: click.Command) -> set[str]:
    """Every flag spelling of every option, e.g. {'--bundle', '--bidirectional', '--no-bidirectional'}."""
    return {opt for p in command.params if isinstance(p, click.Option) for opt in p.opts + p.secondary_opts}


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, re.MULTILINE))


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
    sections = dict(re.findall(r'<h2 id="([\w-]+)">.*?</h2>(.*?)(?=<h2 |\Z)', html, re.DOTALL))
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


# --- The commands shown run for real -------------------------------------------------------------
# README.md's and Getting started's command lines run in a temporary directory laid out as after
# `make demo` (artifacts/demo/checkpoint.pt and bundle, made by a short training run), with s2s-*
# running this checkout. Each runs as written, with only these additions to keep the test fast
# (the last value of a repeated option wins):
CHEAPER = {
    "s2s-train": "--epochs 1 --max-steps 40 --hidden-dim 32 --batch-size 128",
    "s2s-export": "--exporter legacy",
    "s2s-verify": "--samples 16",
    "s2s-bench": "--samples 16 --repeat 1 --no-load-probe",
}
RUN = [README, DOCS / "getting-started.md"]
# Not run here: the shell set-up, the cmudict preset's 30-CPU-minute training and its bundle, and
# s2s-serve, which serves until stopped (tests/test_serve.py runs it as a real server and stops it).
NOT_RUN = re.compile(r"^(make |source |\.venv/bin/python -m pytest)|cmudict|^s2s-train\s*(#|$)|^s2s-serve\b")


def runnable_lines(doc: Path) -> list[str]:
    lines = []
    for block in FENCE.findall(doc.read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line and not line.startswith("#") and not NOT_RUN.search(line) and "s2s-" in line:
                lines.append(line)
    return lines


def with_additions(line: str) -> str:
    """The line without its trailing comment, with CHEAPER's options added to each s2s-* command in it."""
    parts = re.split(r"\s#\s", line, maxsplit=1)[0].split(" | ")
    for i, part in enumerate(parts):
        words = part.split()
        if words and words[0] in CHEAPER:
            redirect = re.search(r"\s[<>]", part)  # options go before a redirection
            cut = redirect.start() if redirect else len(part)
            parts[i] = f"{part[:cut].rstrip()} {CHEAPER[words[0]]}{part[cut:]}"
    return " | ".join(parts)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> tuple[Path, dict]:
    """A directory laid out as `make demo` leaves the clone, and an environment whose s2s-* run this checkout."""
    root = tmp_path_factory.mktemp("docs_run")
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for script in SCRIPTS:
        wrapper = bin_dir / script
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m seq2seq_export {script[4:]} "$@"\n')
        wrapper.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    for line in (
        f"s2s-train --preset toy --out artifacts/demo --force {CHEAPER['s2s-train']} --quiet",
        f"s2s-export --checkpoint artifacts/demo/checkpoint.pt --out artifacts/demo/bundle {CHEAPER['s2s-export']}",
    ):
        done = subprocess.run(
            line, shell=True, cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, f"{line}\n{done.stderr}"
    from test_seed import write_seed_model

    write_seed_model(root)  # seed.pt, src.txt, tgt.txt: what the README's s2s-import example reads
    return root, env


@pytest.mark.parametrize("doc", RUN, ids=lambda p: str(p.relative_to(ROOT)))
def test_commands_shown_run_for_real(doc, demo_dir):
    root, env = demo_dir
    lines = runnable_lines(doc)
    assert lines, f"{doc.name}: no command lines found to run"
    for line in lines:
        run = with_additions(line)
        done = subprocess.run(
            ["bash", "-c", f"set -o pipefail; {run}"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, (
            f"{doc.name}: `{line}` (run as `{run}`) exit {done.returncode}:\n{done.stderr[-2000:]}"
        )
        assert "Traceback" not in done.stderr, f"{doc.name}: `{line}`:\n{done.stderr}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_help_runs(name):
    from click.testing import CliRunner

    result = CliRunner().invoke(COMMANDS[name], ["--help"], prog_name=name)
    assert result.exit_code == 0 and result.output.startswith(f"Usage: {name} "), result.output


def test_quick_start_works_after_make_demo():
    """The README's quick start names only what `make demo` creates: the venv's console scripts and
    scripts/demo.sh's bundle."""
    demo = (ROOT / "scripts" / "demo.sh").read_text(encoding="utf-8")
    assert "BIN=.venv/bin" in demo and "OUT=artifacts/demo" in demo and '--out "$OUT/bundle"' in demo
    assert re.search(r"^demo: \$\(STAMP\)\n\tbash scripts/demo.sh", (ROOT / "Makefile").read_text(), re.MULTILINE)
    quick = README.read_text(encoding="utf-8").split("## Quick start", 1)[1].split("\n## ", 1)[0]
    for line in command_lines(quick):
        words = shlex.split(SEPARATORS.split(line)[0], comments=True)
        assert words[0] in SCRIPTS or words[0] == "make", line
        for path in re.findall(r"artifacts/\S+", line):
            assert path.startswith("artifacts/demo/bundle"), f"quick start uses {path}, which make demo does not write"
