"""s2s-translate on hostile input: token limits, --truncate, line ends, BOM, bad UTF-8, signals (real subprocesses)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from seq2seq_export.constants import DEFAULT_MAX_SRC_TOKENS, MANIFEST_FILE, MAX_LINE_CHARS, MAX_SRC_TOKENS_CEILING
from seq2seq_export.errors import ConfigError, InputTooLong
from seq2seq_export.runtime import Translator

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
S2S_TRANSLATE = str(Path(sys.executable).parent / "s2s-translate")
WORDS = "alpha beta gamma delta"


PYTHON_M = (sys.executable, "-m", "seq2seq_export")


def translate(
    *args: str | bytes, stdin: bytes = b"", cmd: tuple = (*PYTHON_M, "translate")
) -> subprocess.CompletedProcess:
    return subprocess.run([*cmd, *args], input=stdin, capture_output=True, env=ENV, timeout=120, check=False)


def one_line_error(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    err = proc.stderr.decode()
    assert proc.returncode == code, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def words_bundle(tmp_path_factory) -> Path:
    """Space-tokenized source with <eos> appended to every input: the limit counts that <eos>."""
    from conftest import LIVELY_TGT, lively_checkpoint

    from seq2seq_export.bundle import export_bundle
    from seq2seq_export.vocab import TextPipeline, Vocab

    root = tmp_path_factory.mktemp("words")
    text = TextPipeline(Vocab.build([WORDS], "space"), Vocab.build([LIVELY_TGT], "space"), src_append_eos=True)
    ckpt = lively_checkpoint(root / "checkpoint.pt", text=text, scale=3.0, eos_boost=2.0)
    return export_bundle(ckpt, root / "bundle", formats=("onnx",), exporter="legacy", max_len=8, reference=False)


# --- the Translator API ------------------------------------------------------------------------------


def _with_decoding(src: Path, dst: Path, **decoding) -> Path:
    """A copy of bundle `src` whose manifest's decoding section has `decoding` (None: key removed)."""
    shutil.copytree(src, dst)
    manifest = json.loads((dst / MANIFEST_FILE).read_text())
    for key, value in decoding.items():
        if value is None:
            manifest["decoding"].pop(key, None)
        else:
            manifest["decoding"][key] = value
    (dst / MANIFEST_FILE).write_text(json.dumps(manifest))
    return dst


def test_translator_limit_defaults_to_the_bundles(lively_bundle, tmp_path):
    assert Translator.from_bundle(_with_decoding(lively_bundle, tmp_path / "a", max_src_tokens=7)).max_src_tokens == 7
    unrecorded = _with_decoding(lively_bundle, tmp_path / "b", max_src_tokens=None)
    if json.loads((unrecorded / MANIFEST_FILE).read_text())["format_version"] == 1:  # format 2 requires the key
        assert Translator.from_bundle(unrecorded).max_src_tokens == DEFAULT_MAX_SRC_TOKENS
    assert Translator.from_bundle(lively_bundle, max_src_tokens=9).max_src_tokens == 9
    proc = translate("--bundle", str(tmp_path / "a"), "abcdefgh")
    assert "8 tokens, over the limit of 7" in one_line_error(proc)


def test_translator_limit_is_checked(lively_bundle):
    for bad in (0, MAX_SRC_TOKENS_CEILING + 1, "8", True):
        with pytest.raises(ConfigError, match="max_src_tokens must be"):
            Translator.from_bundle(lively_bundle, max_src_tokens=bad)


def test_translator_refuses_or_truncates(lively_bundle):
    tr = Translator.from_bundle(lively_bundle, max_src_tokens=5)
    with pytest.raises(
        InputTooLong,
        match=r"^input 1: 6 tokens, over the limit of 5 tokens per input: raise it "
        r"\(--max-input-tokens / max_src_tokens, at most 4096\), or cut inputs",
    ):
        tr.translations(["abcde", "abcdef"])
    got = tr.translations(["abcde", "abcdefgh"], truncate=True)
    assert [(t.input, t.truncated) for t in got] == [("abcde", False), ("abcde", True)]
    assert got[1].ids == got[0].ids
    assert tr.translate(["abcdefgh"], truncate=True) == [got[0].output]


def test_truncation_keeps_the_appended_eos(words_bundle):
    tr = Translator.from_bundle(words_bundle, max_src_tokens=3)  # two words + <eos>
    with pytest.raises(InputTooLong, match="input 0: 4 tokens with <eos>, over the limit of 3"):
        tr.translations(["alpha beta gamma"])
    cut = tr.translations(["alpha  beta gamma delta"], truncate=True)[0]
    assert cut.input == "alpha  beta" and cut.truncated
    assert cut.ids == tr.translations(["alpha beta"])[0].ids
    assert tr.translate_ids([tr.text.encode_source("alpha beta")]) == [list(cut.ids)]  # <eos> included


def test_a_huge_input_is_refused_without_listing_its_tokens(words_bundle):
    tr = Translator.from_bundle(words_bundle)
    with pytest.raises(InputTooLong, match="input 0: 2000001 tokens with <eos>"):
        tr.translations(["alpha " * 2_000_000])
    with pytest.raises(InputTooLong, match="input 1: 1025 ids, over the limit of 1024"):
        Translator.from_bundle(words_bundle, max_src_tokens=1024).translate_ids([[4], [4] * 1025])


# --- s2s-translate: limits ---------------------------------------------------------------------------


def test_over_long_stdin_line_names_its_line_and_count(lively_bundle):
    proc = translate("--bundle", str(lively_bundle), "--max-input-tokens", "4", stdin=b"ab\nabc\nabcdefg\nab\n")
    err = one_line_error(proc)
    assert err.startswith("Error: standard input line 3: 7 tokens, over the limit of 4 tokens per input")
    assert "--max-input-tokens" in err and "--truncate" in err


def test_over_long_text_argument_names_the_argument(lively_bundle):
    err = one_line_error(translate("--bundle", str(lively_bundle), "--max-input-tokens", "3", "ab", "abcd"))
    assert err.startswith("Error: TEXT argument 2: 4 tokens, over the limit of 3")


def test_truncate_reports_each_cut_and_marks_json(lively_bundle):
    proc = translate(
        "--bundle",
        str(lively_bundle),
        "--max-input-tokens",
        "4",
        "--truncate",
        "--json",
        stdin=b"abcdefg\nab\nabcdxyz\n",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.decode().splitlines() == [
        "standard input line 1: truncated to 4 tokens (it has 7)",
        "standard input line 3: truncated to 4 tokens (it has 7)",
    ]
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [(r["input"], r.get("truncated")) for r in rows] == [("abcd", True), ("ab", None), ("abcd", True)]
    expected = Translator.from_bundle(lively_bundle).translate(["abcd", "ab", "abcd"])
    assert [r["output"] for r in rows] == expected


def test_line_past_the_character_cap_is_counted_not_held(words_bundle):
    """A line of MAX_LINE_CHARS * 3 characters: refused with its exact token count, or cut."""
    line = b"beta " * (3 * MAX_LINE_CHARS // 5)
    stdin = b"alpha\n" + line + b"\ngamma\n"
    err = one_line_error(translate("--bundle", str(words_bundle), "--max-input-tokens", "1024", stdin=stdin))
    assert err.startswith(
        f"Error: standard input line 2: {3 * MAX_LINE_CHARS // 5 + 1} tokens with <eos>, over the limit of 1024"
    )
    proc = translate("--bundle", str(words_bundle), "--max-input-tokens", "1024", "--truncate", "--json", stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(r) for r in proc.stdout.decode().splitlines()]
    assert [len(r["input"].split()) for r in rows] == [1, 1023, 1] and rows[1]["truncated"]


# --- s2s-translate: text encoding and line ends -------------------------------------------------------


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_invalid_utf8_argument_is_one_line(extra, lively_bundle):
    err = one_line_error(translate("--bundle", str(lively_bundle), *extra, "ab", b"a\xffb"))
    assert err == (
        f"Error: argument {len(extra) + 5} is not valid UTF-8 (b'a\\xffb'): every argument, path or text, must be\n"
    )


@pytest.mark.parametrize("cmd", [("translate", "--bundle"), ("verify", "--bundle"), ("export", "--checkpoint")])
def test_invalid_utf8_path_is_one_line_for_every_command(cmd, tmp_path):
    err = one_line_error(translate(cmd[1], os.fsencode(tmp_path) + b"/\xff", cmd=(*PYTHON_M, cmd[0])))
    assert err.startswith("Error: argument 3 is not valid UTF-8")


def test_bom_dropped_lone_cr_kept_crlf_one_end(lively_bundle):
    proc = translate("--bundle", str(lively_bundle), "--json", stdin=b"\xef\xbb\xbfab\r\ncd\ref\r\n\r\ngh")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(r)["input"] for r in proc.stdout.decode().splitlines()] == ["ab", "cd\ref", "", "gh"]


def test_invalid_utf8_stdin_is_one_line(lively_bundle):
    err = one_line_error(translate("--bundle", str(lively_bundle), stdin=b"ab\n\xff\xfe\n"))
    assert err == "Error: standard input is not valid UTF-8\n"


# --- signals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cmd", [(*PYTHON_M, "translate"), (S2S_TRANSLATE,)])
def test_sigint_exits_130_with_one_line(cmd, lively_bundle):
    """Ctrl-C while translate waits on a stdin pipe that is still open."""
    proc = subprocess.Popen(
        [*cmd, "--bundle", str(lively_bundle)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        # Ctrl-C reaches a terminal's foreground process with SIGINT at its default; a shell's background
        # job (pytest started with `&`) would hand SIG_IGN down to it, and Python then keeps ignoring it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        proc.stdin.write(b"abc\n" * 512)  # one whole chunk: its answers prove the process is up and reading
        proc.stdin.flush()
        assert len([proc.stdout.readline() for _ in range(512)]) == 512
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert err.decode() == "Error: interrupted\n"


@pytest.mark.parametrize("cmd", [(*PYTHON_M, "translate"), (S2S_TRANSLATE,)])
def test_closed_stdout_exits_141_quietly(cmd, lively_bundle, tmp_path):
    """`s2s-translate ... | head -1`: the reader goes away after one line."""
    source = tmp_path / "in.txt"
    source.write_text("abc\n" * 5000)
    with open(source, "rb") as stdin:
        proc = subprocess.Popen(
            [*cmd, "--bundle", str(lively_bundle)], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV
        )
        proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read()
        proc.wait(timeout=120)
    assert proc.returncode == 141
    assert err == b""


def test_head_in_a_shell_pipeline(lively_bundle, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("abc\n" * 5000)
    script = (
        f'"{sys.executable}" -m seq2seq_export translate --bundle "{lively_bundle}" < "{source}" | head -1; '
        'echo "status ${PIPESTATUS[0]}" >&2'
    )
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.stdout.count("\n") == 1
    assert proc.stderr == "status 141\n"


def test_train_sigint_saves_then_exits_130(tmp_path):
    """s2s-train's first Ctrl-C stops at the next batch and saves last.pt; the exit still says interrupted."""
    out = tmp_path / "run"
    args = [
        "--preset",
        "toy",
        "--emb-dim",
        "8",
        "--hidden-dim",
        "16",
        "--batch-size",
        "512",
        "--epochs",
        "1000",
        "--max-minutes",
        "0",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen([*PYTHON_M, "train", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    try:
        seen = b""
        while b"epoch 1.00 step 40" not in seen:  # the first validation: the loop and its SIGINT handler run
            piece = os.read(proc.stderr.fileno(), 4096)
            assert piece, seen.decode(errors="replace")
            seen += piece
        proc.send_signal(signal.SIGINT)
        stdout, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 130, err.decode(errors="replace")[-500:]
    assert "(stopped by interrupt)" in stdout.decode()
    assert err.decode().splitlines()[-1] == f"interrupted: continue with --resume --out {out}"
    assert (out / "last.pt").is_file() and (out / "checkpoint.pt").is_file()
