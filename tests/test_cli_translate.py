"""s2s-translate: arguments and streamed stdin in order, --json, and every bundle problem as exit 2."""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from seq2seq_export.cli import TRANSLATE_CHUNK, main, translate_cmd
from seq2seq_export.constants import DECODER_ONNX, ENCODER_ONNX, MANIFEST_FILE
from seq2seq_export.errors import BundleError
from seq2seq_export.runtime import Translator

pytestmark = pytest.mark.usefixtures("one_torch_thread")

S2S_TRANSLATE = str(Path(sys.executable).parent / "s2s-translate")


def random_words(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz'?") for _ in range(rng.choice((0, 1, 3, 6, 9)))) for _ in range(n)]


def test_text_arguments_one_line_each(lively_bundle):
    words = ["hello", "", "world", "a?b"]
    result = CliRunner().invoke(translate_cmd, ["--bundle", str(lively_bundle), *words])
    assert result.exit_code == 0, result.output
    assert result.stdout.split("\n") == Translator.from_bundle(lively_bundle).translate(words) + [""]
    # no progress bar (stderr is not a terminal): only the closing warning about "a?b"
    assert result.stderr == UNKNOWN_WARNING.format(summary="1 input had 1 symbol", first="'?' in TEXT argument 4")


UNKNOWN_WARNING = ("warning: {summary} outside the source vocabulary (first: {first}); the model read them as <unk>: "
                   "check the input's language, script and case (--json lists them as \"unknown\")\n")


def test_unknown_symbols_are_counted_on_stderr_and_listed_in_json(lively_bundle):
    args = ["translate", "--bundle", str(lively_bundle), "--json"]
    result = CliRunner().invoke(main, args, input="abc\nHI?\n\n\u0416x\n")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r.get("unknown") for r in rows] == [None, ["H", "I", "?"], None, ["\u0416"]]
    summary, first = "2 inputs had 4 symbols", "'H' in standard input line 2"
    assert result.stderr == UNKNOWN_WARNING.format(summary=summary, first=first)


def test_normalized_input_reads_alike_and_json_keeps_it_as_given(normalizing_bundle):
    result = CliRunner().invoke(main, ["translate", "--bundle", str(normalizing_bundle), "--json", "HELLO", "hello",
                                       "Cafe\u0301", "caf\u00e9"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["input"] for r in rows] == ["HELLO", "hello", "Cafe\u0301", "caf\u00e9"]
    assert rows[0]["output"] == rows[1]["output"] and rows[2]["output"] == rows[3]["output"]
    assert [r.get("unknown") for r in rows] == [None, None, ["\u00e9"], ["\u00e9"]]  # one symbol after NFC, not two


@pytest.mark.parametrize("backend", ["onnx", "torchscript", "eager"])
def test_json_lines_per_backend(backend, lively_bundle):
    args = ["translate", "--bundle", str(lively_bundle), "--backend", backend, "--json", "--max-len", "4"]
    result = CliRunner().invoke(main, args, input="hello\n\nzebra\n")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    expected = Translator.from_bundle(lively_bundle, backend, max_len=4).translations(["hello", "", "zebra"], scores=True)
    best = [{"output": t.output, "ids": list(t.ids), "score": t.score} for t in expected]
    assert rows == [{"input": t.input, **b, "hypotheses": [b]} for t, b in zip(expected, best)]
    assert rows[0]["score"] < 0 and rows[1]["score"] is None  # a decoded input has a log-prob score, an empty one none


def test_stdin_2000_lines_keep_their_order(lively_bundle):
    words = random_words(2000)
    proc = subprocess.run(
        [S2S_TRANSLATE, "--bundle", str(lively_bundle), "--batch-size", "16"],
        input="\n".join(words) + "\n", capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    unknown = [w.count("?") for w in words]  # random_words' one symbol outside the vocabulary
    summary = f"{sum(map(bool, unknown))} inputs had {sum(unknown)} symbols"
    first = f"'?' in standard input line {next(i for i, n in enumerate(unknown, 1) if n)}"
    assert proc.stderr == UNKNOWN_WARNING.format(summary=summary, first=first)  # and no progress bar
    assert proc.stdout.split("\n") == Translator.from_bundle(lively_bundle).translate(words) + [""]


def test_stdin_is_streamed_not_read_whole(lively_bundle):
    """The first chunk's outputs arrive while stdin is still open."""
    words = random_words(TRANSLATE_CHUNK, seed=1)
    proc = subprocess.Popen(
        [S2S_TRANSLATE, "--bundle", str(lively_bundle)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.extend(proc.stdout.readline() for _ in words), daemon=True)
    try:
        proc.stdin.write("\n".join(words) + "\n")
        proc.stdin.flush()
        reader.start()
        reader.join(timeout=120)
        assert not reader.is_alive(), "no output before end of input: stdin is not streamed"
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert [g.rstrip("\n") for g in got] == Translator.from_bundle(lively_bundle).translate(words)


def _tamper(root: Path, tmp: Path) -> None:
    with open(root / ENCODER_ONNX, "ab") as f:
        f.write(b"\0")


def _remove(root: Path, tmp: Path) -> None:
    (root / DECODER_ONNX).unlink()


def _edit(fn):
    def apply(root: Path, tmp: Path) -> None:
        manifest = json.loads((root / MANIFEST_FILE).read_text())
        fn(manifest)
        (root / MANIFEST_FILE).write_text(json.dumps(manifest))

    return apply


def _symlink_out(root: Path, tmp: Path) -> None:
    outside = tmp / "outside.onnx"  # identical bytes, so only the location is wrong
    shutil.copy(root / ENCODER_ONNX, outside)
    (root / ENCODER_ONNX).unlink()
    os.symlink(outside, root / ENCODER_ONNX)


BROKEN = {
    "tampered": (_tamper, "checksum mismatch"),
    "missing": (_remove, "is missing"),
    "dotdot": (_edit(lambda m: m["graphs"]["encoder"]["files"]["onnx"].update(path="../x")),
               "path: '../x' breaks the rule: A relative '/'-separated path inside the bundle"),
    "symlink": (_symlink_out, "outside the bundle directory"),
    "version": (_edit(lambda m: m.update(format_version=99)), "format_version 99 is not supported"),
    "vocabulary": (_edit(lambda m: m["text"]["target"]["tokens"].append("EXTRA")), "differs from the target vocabulary's"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_bundle_problem_is_one_line_and_exit_2(case, tiny_bundle, tmp_path):
    breaker, message = BROKEN[case]
    root = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, root)
    breaker(root, tmp_path)
    with pytest.raises(BundleError, match=message):
        Translator.from_bundle(root)
    result = CliRunner().invoke(translate_cmd, ["--bundle", str(root), "abc"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backend", "tflite"], "'--backend': 'tflite' is not one of 'eager', 'torchscript', 'onnx'."),
        (["--batch-size", "0"], "batch_size must be a positive integer"),
        (["--threads", "0"], "'--threads': 0 is not in the range 1<=x<=256"),
        (["--threads", "5000"], "'--threads': 5000 is not in the range 1<=x<=256"),
        (["--max-input-tokens", "0"], "'--max-input-tokens': 0 is not in the range 1<=x<=4096"),
        (["--max-input-tokens", "4097"], "'--max-input-tokens': 4097 is not in the range 1<=x<=4096"),
    ],
)
def test_bad_options_exit_2(args, message, tiny_bundle):
    result = CliRunner().invoke(translate_cmd, ["--bundle", str(tiny_bundle), *args, "abc"])
    assert result.exit_code == 2 and message in result.stderr


def test_not_a_bundle_exit_2(tmp_path):
    result = CliRunner().invoke(main, ["translate", "--bundle", str(tmp_path), "abc"])
    assert result.exit_code == 2 and "manifest.json: missing" in result.stderr


def test_stdin_line_ends_bom_and_invalid_utf8(lively_bundle):
    """Only \\n ends a line (\\r\\n is one end, a lone \\r is a character); a leading BOM is dropped."""
    expected = Translator.from_bundle(lively_bundle).translate(["ab", "cd\ref", "gh"])
    assert expected[1] != Translator.from_bundle(lively_bundle).translate(["cd"])[0]  # the \r is seen
    result = CliRunner().invoke(translate_cmd, ["--bundle", str(lively_bundle)], input=b"\xef\xbb\xbfab\r\ncd\ref\ngh")
    assert result.exit_code == 0, result.output
    assert result.stdout.split("\n") == expected + [""]
    result = CliRunner().invoke(translate_cmd, ["--bundle", str(lively_bundle)], input=b"ab\n\xff\xfe\n")
    assert result.exit_code == 2
    assert result.stderr == "Error: standard input is not valid UTF-8\n"


@pytest.mark.parametrize("encoding", ["ascii", "utf-8"])
def test_output_is_utf8_even_where_stdout_says_ascii(tiny_bundle, encoding):
    env = {**os.environ, "PYTHONIOENCODING": encoding}
    proc = subprocess.run([sys.executable, "-m", "seq2seq_export", "translate", "--bundle", str(tiny_bundle), "--json",
                           "héllo→"], capture_output=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.decode("utf-8"))["input"] == "héllo→"


@pytest.mark.parametrize("penalty", ["1.0", "0"])
def test_beam_json_lists_the_n_best_with_scores(penalty, lively_bundle):
    words = random_words(40, seed=3)
    args = ["--bundle", str(lively_bundle), "--json", "--beam-size", "4", "--n-best", "3", "--length-penalty", penalty]
    result = CliRunner().invoke(translate_cmd, [*args, "--token-scores", *words])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    want = Translator.from_bundle(lively_bundle).translations(
        words, beam_size=4, num_hypotheses=3, length_penalty=float(penalty), token_scores=True)
    assert len(records) == len(words)
    for r, t in zip(records, want):
        assert r["input"] == t.input and r["output"] == t.output and r["ids"] == list(t.ids) and r["score"] == t.score
        assert [(h["ids"], h["score"], h["token_scores"]) for h in r["hypotheses"]] == [
            (list(h.ids), h.score, list(h.token_scores or ())) for h in t.hypotheses]
        if t.ids:  # a decoded input: 3 distinct hypotheses, best first, the record's own output leading
            scores = [h["score"] for h in r["hypotheses"]]
            assert len(scores) == 3 and scores == sorted(scores, reverse=True) and r["hypotheses"][0]["ids"] == r["ids"]
            assert len({tuple(h["ids"]) for h in r["hypotheses"]}) == 3
    # plain output: the best hypothesis, one line per input, as before
    plain = CliRunner().invoke(translate_cmd, ["--bundle", str(lively_bundle), "--beam-size", "4", "--n-best", "3",
                                               "--length-penalty", penalty, *words])
    assert plain.stdout.splitlines() == [t.output for t in want]


def test_greedy_json_scores_equal_beam_1(lively_bundle):
    words = random_words(30, seed=4)
    greedy = CliRunner().invoke(translate_cmd, ["--bundle", str(lively_bundle), "--json", *words])
    beam1 = CliRunner().invoke(translate_cmd, ["--bundle", str(lively_bundle), "--json", "--beam-size", "1", *words])
    assert greedy.exit_code == beam1.exit_code == 0
    assert greedy.stdout == beam1.stdout
    plain = Translator.from_bundle(lively_bundle).translate(words)
    assert [json.loads(line)["output"] for line in greedy.stdout.splitlines()] == plain


@pytest.mark.parametrize(
    "args, message",
    [
        (["--beam-size", "0"], "beam_size must"),
        (["--beam-size", "2", "--n-best", "3"], "num_hypotheses must lie in [1, beam_size 2]"),
        (["--length-penalty", "-1"], "length_penalty must be a finite number in [0, 10], got -1.0"),
        (["--length-penalty", "inf"], "length_penalty must be a finite number in [0, 10], got inf"),
        (["--token-scores"], "--token-scores needs --json"),
    ],
)
def test_bad_search_options_are_one_line_exit_2(args, message, lively_bundle):
    proc = subprocess.run([S2S_TRANSLATE, "--bundle", str(lively_bundle), *args, "abc"], capture_output=True, timeout=120)
    stderr = proc.stderr.decode()
    assert proc.returncode == 2 and proc.stdout == b"" and message in stderr, stderr
    if "--token-scores" not in args:  # a library error: one line (a usage error prints click's usage lines)
        assert stderr.count("\n") == 1 and "Traceback" not in stderr
