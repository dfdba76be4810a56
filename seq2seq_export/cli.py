"""The command-line layer: parse options, call the library, format results. Nothing else.

Exit codes, for every command (console script or `python -m seq2seq_export`):
  0    success;
  1    a check failed (s2s-verify found a difference, s2s-bench saw backends disagree);
  2    unusable input (bad option, file, bundle, checkpoint, or an input over the token limit),
       reported as one line on stderr;
  130  interrupted (SIGINT, Ctrl-C): one line on stderr, no traceback; s2s-train first saves last.pt;
  141  standard output closed early (`s2s-translate ... | head -1`): quiet, as a shell reports a
       process ended by SIGPIPE.
Heavy imports (torch above all) happen inside commands, so `s2s-translate --backend onnx` never
imports torch.
"""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from .config import ATTENTION_SCORES, ATTENTION_TYPES, RNN_TYPES
from .constants import DEFAULT_ATOL, DEFAULT_EXACT_FACTOR, DEFAULT_RTOL, MAX_SRC_TOKENS_CEILING, MAX_THREADS
from .errors import Seq2SeqExportError, VerificationFailed

EXIT_INTERRUPTED = 130  # 128 + SIGINT: what a shell reports for a program stopped by Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `cmd | head` when head exits first


class InputError(click.ClickException):
    """One line on stderr, exit 2: the input could not be used."""

    exit_code = 2


class CheckFailed(click.ClickException):
    """One line on stderr, exit 1: the input was fine but a check failed."""

    exit_code = 1


class Interrupted(click.ClickException):
    """One line on stderr, exit 130: SIGINT (Ctrl-C)."""

    exit_code = EXIT_INTERRUPTED


class _Exits:
    """Every command and the group: arguments must be UTF-8; Ctrl-C and a closed stdout pipe end with
    their Unix exit codes."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for i, arg in enumerate(args, 1):
            try:
                arg.encode("utf-8")
            except UnicodeEncodeError:  # bytes the locale could not decode, kept as surrogate escapes
                raise InputError(f"argument {i} is not valid UTF-8 ({os.fsencode(arg)!r}): every argument, "
                                 "path or text, must be") from None
        return super().parse_args(ctx, args)  # type: ignore[misc]

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)  # type: ignore[misc]
        except KeyboardInterrupt:
            if sys.stderr.isatty():
                click.echo(err=True)  # end the terminal's "^C" line first
            raise Interrupted("interrupted") from None
        except BrokenPipeError:
            # Nobody reads any more: later writes (and the flush at exit) go to /dev/null, quietly.
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, sys.stdout.fileno())
            os.close(null)
            ctx.exit(EXIT_BROKEN_PIPE)


class Command(_Exits, click.Command):
    pass


class Group(_Exits, click.Group):
    pass


def command(name: str) -> Callable[[Callable[..., Any]], click.Command]:
    """@click.command with the project's exits and help options."""
    return click.command(name, cls=Command, context_settings={"help_option_names": ["-h", "--help"]})


THREADS = click.IntRange(1, MAX_THREADS)


def library_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's typed exceptions into one-line click errors with the documented exit codes."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VerificationFailed as e:
            raise CheckFailed(str(e)) from None
        except Seq2SeqExportError as e:
            raise InputError(str(e)) from None

    return wrapper


def _write_text(path: Path, text: str) -> None:
    """A --json report, written atomically (a reader never sees half of it)."""
    from .fsutil import atomic_file

    with atomic_file(path, option="--json") as tmp:
        tmp.write_text(text, encoding="utf-8")


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="seq2seq-export")
def main() -> None:
    """seq2seq-export: train, export, translate, verify and benchmark GRU seq2seq models.

    Each command is also installed as a console script (s2s-train, s2s-export, ...).
    """


# --- s2s-bench ------------------------------------------------------------------------------------


def _csv(value: str, option: str, convert: Callable[[str], Any] = str) -> tuple:
    """'1,16,64' -> (1, 16, 64); a bad item is a one-line InputError naming the option."""
    try:
        items = tuple(convert(v.strip()) for v in value.split(",") if v.strip())
    except ValueError:
        raise InputError(f"{option}: expected a comma-separated list, got {value!r}") from None
    if not items:
        raise InputError(f"{option}: the list is empty")
    return items


@command("bench")
@click.option("--bundle", "bundle_dir", required=True, type=click.Path(path_type=Path),
              help="Bundle directory written by s2s-export (needs its reference checkpoint for eager).")
@click.option("--backends", default="eager,torchscript,onnx", show_default=True,
              help="Comma-separated backends, timed side by side; eager is the reference for ratios.")
@click.option("--batch-sizes", default="1,16,64,256", show_default=True,
              help="Comma-separated batch sizes; each backend runs at each.")
@click.option("--threads", default=1, show_default=True, type=THREADS,
              help="Intra-op threads for every backend (torch.set_num_threads, onnxruntime intra_op_num_threads).")
@click.option("--device", default="cpu", show_default=True,
              help="cpu, cuda or auto (CUDA when available), for every backend and the GEMM limit.")
@click.option("--samples", default=1000, show_default=True, type=int, help="Source sequences decoded by every timed run.")
@click.option("--data", default="random", show_default=True,
              help="Inputs: random (ids from the source vocabulary), toy, cmudict or tsv:PATH (their source sides).")
@click.option("--repeat", default=5, show_default=True, type=int,
              help="Timed runs per backend and batch size (after one warm-up); figures are their medians.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the full result (rows, loads, machine, GEMM limit, token check) as JSON here.")
@click.option("--no-load-probe", is_flag=True,
              help="Skip measuring load time and peak RSS of each backend in a fresh process (faster).")
@library_errors
def bench_cmd(bundle_dir: Path, backends: str, batch_sizes: str, threads: int, device: str, samples: int, data: str,
              repeat: int, json_path: Path | None, no_load_probe: bool) -> None:
    """Benchmark every backend of a bundle: throughput, latency, load time, memory, share of the GEMM limit.

    Exit 1 if the backends do not produce identical tokens (the table and JSON are still written).
    """
    from .bench import BenchConfig, format_table, run_benchmark
    cfg = BenchConfig(
        bundle=bundle_dir, backends=_csv(backends, "--backends"), batch_sizes=_csv(batch_sizes, "--batch-sizes", int),
        threads=threads, device=device, samples=samples, data=data, repeat=repeat, probe_loads=not no_load_probe,
    )
    result = run_benchmark(cfg)
    if json_path is not None:
        _write_text(json_path, result.to_json())
    click.echo(format_table(result))
    result.raise_on_mismatch()


main.add_command(bench_cmd, "bench")


# --- s2s-translate --------------------------------------------------------------------------------

TRANSLATE_CHUNK = 512  # stdin lines translated and written per round: bounded memory, batches stay full
TRANSLATE_CHUNK_CHARS = 1 << 22  # and at most about this many characters per round, however long the lines


def _chunks(items: Any, size: int, chars: int = TRANSLATE_CHUNK_CHARS) -> Any:
    """Lists of up to `size` (text, ...) items and about `chars` characters, never reading ahead of the chunk."""
    chunk: list[Any] = []
    held = 0
    for item in items:
        chunk.append(item)
        held += len(item[0])
        if len(chunk) == size or held >= chars:
            yield chunk
            chunk, held = [], 0
    if chunk:
        yield chunk


def _fitted(translator: Any, lines: Any, truncate: bool, where: str) -> Any:
    """(text, truncated) per input line, each within the translator's token limit (or InputTooLong)."""
    from .constants import MAX_LINE_CHARS

    for line in lines:
        label = f"{where} {line.number}"
        fit = translator.fit(line.text, truncate=truncate, where=label, tokens=line.tokens)
        if fit.truncated:
            limit = translator.max_src_tokens
            click.echo(f"{label}: truncated to {limit} tokens (it has {fit.tokens})" if fit.tokens > limit
                       else f"{label}: truncated to its first {MAX_LINE_CHARS} characters", err=True)
        yield fit.text, fit.truncated


@command("translate")
@click.option("--bundle", "bundle_dir", required=True, type=click.Path(path_type=Path),
              help="Bundle directory written by s2s-export (checked: version, paths, sha256).")
@click.option("--backend", default="onnx", show_default=True,
              help="onnx (onnxruntime, never imports torch), torchscript or eager (the bundle's reference checkpoint).")
@click.option("--batch-size", default=32, show_default=True, type=int,
              help="Sequences per batch (sorted by length); results do not depend on it.")
@click.option("--max-len", type=int, help="Decoding steps at most per sequence [default: the bundle's].")
@click.option("--max-input-tokens", "max_src_tokens", type=click.IntRange(1, MAX_SRC_TOKENS_CEILING),
              help=f"Tokens at most per input, <eos> included, 1-{MAX_SRC_TOKENS_CEILING}; a longer input is an "
                   "error (exit 2) naming its line, unless --truncate [default: the bundle's].")
@click.option("--truncate", is_flag=True,
              help="Cut an input over --max-input-tokens to its first tokens instead of stopping; each cut is "
                   "reported on stderr (and with --json as \"truncated\": true).")
@click.option("--threads", type=THREADS, help=f"Compute threads (onnxruntime intra-op / torch), 1-{MAX_THREADS} "
                                              "[default: the library's].")
@click.option("--json", "as_json", is_flag=True, help="Write one JSON object per line: {input, output, ids}.")
@click.option("--attention-out", "attention", is_flag=True,
              help="With --json: add \"attention\", one row per output token of weights over the source tokens "
                   "(models with attention).")
@click.argument("texts", nargs=-1, metavar="[TEXT]...")
@library_errors
def translate_cmd(bundle_dir: Path, backend: str, batch_size: int, max_len: int | None, max_src_tokens: int | None,
                  truncate: bool, threads: int | None, as_json: bool, attention: bool, texts: tuple[str, ...]) -> None:
    """Translate each TEXT, or each line of standard input, to one output line, in input order.

    Standard input is UTF-8, streamed in chunks (any size of input, constant memory); only \\n ends
    a line (\\r\\n too; a lone \\r is a character), a leading byte-order mark is dropped, and empty
    lines give empty outputs. A progress bar appears on stderr when it is a terminal.
    """
    from .lines import InputLine, read_lines, text_stream
    from .runtime.translator import Translator

    if attention and not as_json:
        raise click.UsageError("--attention-out needs --json (the weights are written into each JSON line)")
    translator = Translator.from_bundle(bundle_dir, backend, batch_size=batch_size, max_len=max_len,
                                        max_src_tokens=max_src_tokens, threads=threads)
    stdin = text_stream(sys.stdin.buffer)
    if texts:
        lines, where, chunk = (InputLine(i, t) for i, t in enumerate(texts, 1)), "TEXT argument", TRANSLATE_CHUNK
    else:
        lines, where = read_lines(stdin, translator.text.src.tokenizer), "standard input line"
        chunk = 1 if stdin.isatty() else TRANSLATE_CHUNK  # interactive: answer each line at once
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(texts) or None, unit="line", file=sys.stderr)
    try:
        inputs = _chunks(_fitted(translator, lines, truncate, where), chunk)
        _translate_stream(translator, inputs, as_json, attention, bar)
    except UnicodeDecodeError:
        raise InputError("standard input is not valid UTF-8") from None
    finally:
        if bar is not None:
            bar.close()


def _translate_stream(translator: Any, chunks: Any, as_json: bool, attention: bool, bar: Any) -> None:
    import json

    out = click.get_text_stream("stdout")
    for batch in chunks:
        results = translator.translations([text for text, _ in batch], attention=attention)
        for t, (_, truncated) in zip(results, batch):
            if as_json:
                record: dict[str, Any] = {"input": t.input, "output": t.output, "ids": list(t.ids)}
                if attention:
                    record["attention"] = [[round(w, 6) for w in row] for row in t.attention]
                if truncated:
                    record["truncated"] = True
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                out.write(t.output + "\n")
        out.flush()
        if bar is not None:
            bar.update(len(batch))


main.add_command(translate_cmd, "translate")


# --- s2s-verify -----------------------------------------------------------------------------------


@command("verify")
@click.option("--bundle", "bundle_dir", required=True, type=click.Path(path_type=Path),
              help="Bundle directory written by s2s-export; it must include its reference checkpoint.")
@click.option("--samples", default=200, show_default=True, type=click.IntRange(min=1),
              help="Source sequences decoded by the eager reference and by every backend.")
@click.option("--data", default="random", show_default=True,
              help="Sources: random (ids from the source vocabulary, lengths 1-64), or the test split of toy, cmudict or tsv:PATH.")
@click.option("--atol", default=DEFAULT_ATOL, show_default=True, type=float,
              help="Absolute tolerance on logits and states: a value passes when |got - eager| <= atol + rtol * |eager|.")
@click.option("--rtol", default=DEFAULT_RTOL, show_default=True, type=float,
              help="Relative tolerance (see --atol); covers float32 rounding on large logits of trained models.")
@click.option("--exact-factor", default=DEFAULT_EXACT_FACTOR, show_default=True, type=float,
              help="Float64 budget: an output missing --atol/--rtol still passes when, over the check, it is within "
                   "atol + this factor x eager's own distance from the model run in float64. 0 turns it off.")
@click.option("--backends", default=None,
              help="Comma-separated backends to check against eager: onnx, torchscript [default: every format in the bundle].")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Seed for random sources and probe inputs.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the report (every check, figures, per-step differences) as JSON here.")
@library_errors
def verify_cmd(bundle_dir: Path, samples: int, data: str, atol: float, rtol: float, exact_factor: float,
               backends: str | None, seed: int, json_path: Path | None) -> None:
    """Prove a bundle's ONNX and TorchScript graphs decode exactly like its eager reference.

    Checks graph outputs, teacher-forced steps, free-running greedy tokens, batch invariance and
    the ONNX export lint; prints one row per check. Exit 0 if all pass, 1 if any fails, 2 for
    unusable input.
    """
    from .verify import format_report, verify

    chosen = None if backends is None else _csv(backends, "--backends")
    report = verify(bundle_dir, samples=samples, data=data, atol=atol, rtol=rtol, exact_factor=exact_factor,
                    backends=chosen, seed=seed)
    if json_path is not None:
        _write_text(json_path, report.to_json() + "\n")
    click.echo(format_report(report))
    report.raise_if_failed()


main.add_command(verify_cmd, "verify")


# --- s2s-train ------------------------------------------------------------------------------------


@command("train")
@click.option("--preset", default=None, help="Preset name (toy, cmudict) or path to a TOML preset [default: cmudict].")
@click.option("--dataset", help="toy, cmudict or tsv:PATH (source<TAB>target per line) [default: the preset's].")
@click.option("--out", help="Output folder for checkpoint.pt, last.pt and metrics.json; one that already holds a run "
              "is refused without --resume or --force [default: artifacts/<preset>, or artifacts/<preset>-<dataset> "
              "(the TSV file's name) for another dataset than the preset's].")
@click.option("--epochs", type=int, help="Passes over the train split at most [default: the preset's].")
@click.option("--max-minutes", type=float, help="Time budget for the whole run, 0 for none [default: the preset's].")
@click.option("--clock", type=click.Choice(["wall", "cpu"]),
              help="What --max-minutes counts: wall time, or this process's CPU time (fair on a busy machine) [default: the preset's].")
@click.option("--max-steps", type=int, help="Stop after this many optimizer steps in total, 0 for none.")
@click.option("--batch-size", type=int, help="Pairs per optimizer step [default: the preset's].")
@click.option("--lr", type=float, help="Adam peak learning rate [default: the preset's].")
@click.option("--lr-schedule", help="constant, or cosine decay that ends with the epochs or the time budget.")
@click.option("--teacher-forcing", type=float, help="Probability of feeding the gold token; 1.0 is fastest.")
@click.option("--clip", type=float, help="Gradient-norm clip, 0 for none [default: the preset's].")
@click.option("--label-smoothing", type=float,
              help="Training loss only: share of each target's probability spread evenly over the vocabulary [default: the preset's].")
@click.option("--weight-decay", type=float,
              help="AdamW decoupled weight decay on weight matrices and embeddings, 0 for plain Adam [default: the preset's].")
@click.option("--ema-decay", type=float,
              help="Validate, keep and test a moving average of the weights, e.g. 0.999; 0 for off [default: the preset's].")
@click.option("--validate-every", type=int,
              help="Validate every N epochs (and always when the run stops): validation spends budget time too [default: the preset's].")
@click.option("--seed", type=int, help="Seed for weights, data order, dropout and the toy data [default: 0].")
@click.option("--device", help="auto (CUDA when available), cpu or cuda [default: auto].")
@click.option("--threads", type=click.IntRange(0, MAX_THREADS),
              help="CPU threads for torch, 0 for torch's default; 1 is fastest on a busy machine.")
@click.option("--emb-dim", type=int, help="Embedding size [default: the preset's].")
@click.option("--hidden-dim", type=int, help="Recurrent state size [default: the preset's].")
@click.option("--encoder-hidden-dim", type=int,
              help="A bidirectional encoder's state size per direction, 0 for --hidden-dim [default: the preset's].")
@click.option("--layers", "num_layers", type=int, help="Stacked recurrent layers, both sides [default: the preset's].")
@click.option("--dropout", type=float, help="Dropout on embeddings and between layers [default: the preset's].")
@click.option("--rnn", type=click.Choice(RNN_TYPES), help="Recurrent cell, both sides [default: the preset's].")
@click.option("--bidirectional/--no-bidirectional", "bidirectional_encoder", default=None,
              help="Encoder reads both ways; a learned bridge feeds the decoder [default: the preset's].")
@click.option("--attention", type=click.Choice(ATTENTION_TYPES),
              help="Decoder attention over the encoder outputs [default: the preset's].")
@click.option("--attention-score", type=click.Choice(ATTENTION_SCORES),
              help="Luong score: general (h^T W k) or dot (h^T k, unidirectional encoders) [default: the preset's].")
@click.option("--reverse-source/--no-reverse-source", "reverse_source", default=None,
              help="Encoder reads each source backwards; helps models without attention [default: the preset's].")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out from its last.pt (same settings).")
@click.option("--force", is_flag=True,
              help="Replace the run in --out: deletes its checkpoint.pt, last.pt, metrics.json and bundle/ "
                   "(the default export of that checkpoint) before training starts.")
@click.option("--quiet", is_flag=True, help="No progress bar and no per-epoch lines; only the summary.")
@library_errors
def train_cmd(preset: str | None, resume: bool, force: bool, quiet: bool, **options: Any) -> None:
    """Train a seq2seq model (GRU or LSTM, optionally bidirectional with attention); the best checkpoint goes to OUT/checkpoint.pt.

    Each epoch reports validation loss, exact match and token error rate (WER and PER for
    cmudict); the end reports the test split. Ctrl-C stops at the next batch and saves OUT/last.pt
    for --resume.
    """
    from .constants import DEFAULT_PRESET
    from .train import load_config, train

    cfg = load_config(preset or DEFAULT_PRESET, **options)
    result = train(cfg, resume=resume, force=force, log=None if quiet else lambda msg: click.echo(msg, err=True),
                   progress=not quiet)
    v, t = result.valid, result.test
    click.echo(f"checkpoint: {result.checkpoint}")
    click.echo(f"trained {result.epochs:g} epochs, {result.steps} steps in {result.elapsed_s / 60:.1f} min "
               f"(stopped by {result.stopped_by}); {result.words_per_s:.0f} training pairs/s")
    click.echo(f"valid: exact match {v['exact_match']:.2%}, token error rate {v['token_error_rate']:.2%} ({v['count']} pairs)")
    click.echo(f"test:  exact match {t['exact_match']:.2%}, token error rate {t['token_error_rate']:.2%} ({t['count']} pairs)")
    if result.stopped_by == "interrupt":  # saved and summarized, but the run did not end: exit as interrupted
        click.echo(f"interrupted: continue with --resume --out {result.out_dir}", err=True)
        click.get_current_context().exit(EXIT_INTERRUPTED)


main.add_command(train_cmd, "train")


# --- s2s-export / s2s-import ----------------------------------------------------------------------


@command("export")
@click.option("--checkpoint", "checkpoint_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Checkpoint written by s2s-train or s2s-import.")
@click.option("--format", "fmt", type=click.Choice(["onnx", "torchscript", "all"]), default="all", show_default=True,
              help="Graph formats to write: ONNX (encoder.onnx, decoder_step.onnx), TorchScript (.pt), or both.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Bundle directory to create [default: 'bundle' beside the checkpoint].")
@click.option("--opset", type=int, default=None,
              help="ONNX opset version, at least 17 [default: 18].")
@click.option("--exporter", type=click.Choice(["dynamo", "legacy"]), default="dynamo", show_default=True,
              help="ONNX exporter: dynamo (torch.export-based) or legacy (TorchScript-based, faster).")
@click.option("--force", is_flag=True, help="Replace an existing bundle at --out (atomically, only when the new one is complete).")
@click.option("--no-reference", is_flag=True,
              help="Do not copy the checkpoint into the bundle (the eager backend and s2s-verify then cannot use it).")
@click.option("--max-len", type=click.IntRange(min=1),
              help="Decoding steps recorded as the bundle's default [default: the checkpoint's training max_len, else 50].")
@click.option("--no-verify", is_flag=True,
              help="Skip the quick s2s-verify run (16 samples, every check) that otherwise gates the bundle; "
                   "it is also skipped with --no-reference.")
@library_errors
def export_cmd(checkpoint_path: Path, fmt: str, out_dir: Path | None, opset: int | None, exporter: str,
               force: bool, no_reference: bool, max_len: int | None, no_verify: bool) -> None:
    """Export a checkpoint's encoder and single-step decoder as a bundle with manifest.json.

    Every ONNX graph is checked (onnx.checker full check, GRU linear_before_reset=1, dynamic batch
    and length axes, no training-mode ops) before the bundle is moved into place.
    """
    import time

    from .bundle import export_bundle
    from .constants import DEFAULT_OPSET
    from .manifest import FORMATS, load_bundle
    from .verify import export_check

    start = time.perf_counter()
    formats = FORMATS if fmt == "all" else (fmt,)
    hook = None if no_verify or no_reference else export_check
    out = export_bundle(checkpoint_path, out_dir, formats=formats, opset=opset or DEFAULT_OPSET, exporter=exporter,
                        force=force, reference=not no_reference, max_len=max_len, verify=hook,
                        log=lambda note: click.echo(note, err=True))
    elapsed = time.perf_counter() - start
    click.echo(f"bundle: {out}")
    for path in sorted(out.iterdir()):
        click.echo(f"  {path.name:<20} {path.stat().st_size / 1e6:9.3f} MB")
    bundle = load_bundle(out)
    click.echo(f"formats: {', '.join(bundle.formats)}; max_len {bundle.max_len}; exported in {elapsed:.1f} s")
    click.echo("verified: quick s2s-verify passed" if hook else "not verified: run s2s-verify --bundle on it")


main.add_command(export_cmd, "export")


@command("import")
@click.argument("state_dict", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--src-vocab", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Source vocabulary file: one token per line, the line number (from 0) is its id.")
@click.option("--tgt-vocab", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Target vocabulary file, same format.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Checkpoint file to write (then: s2s-export --checkpoint OUT).")
@click.option("--pad", default="<pad>", show_default=True, help="Text of the padding token (both sides need it).")
@click.option("--unk", default="<unk>", show_default=True, help="Text of the unknown token (optional on each side).")
@click.option("--sos", default="<sos>", show_default=True, help="Text of the start token (the target needs it).")
@click.option("--eos", default="<eos>", show_default=True, help="Text of the end token (the target needs it).")
@click.option("--src-eos/--no-src-eos", default=False, show_default=True,
              help="Append the end token to every source sequence, as the model was trained.")
@click.option("--src-tokenizer", type=click.Choice(["char", "space"]), default="char", show_default=True,
              help="Source tokenizer: one token per character, or whitespace-separated words.")
@click.option("--tgt-tokenizer", type=click.Choice(["char", "space"]), default="char", show_default=True,
              help="Target tokenizer: one token per character, or whitespace-separated words.")
@library_errors
def import_cmd(state_dict: Path, src_vocab: Path, tgt_vocab: Path, out_path: Path, pad: str, unk: str, sos: str,
               eos: str, src_eos: bool, src_tokenizer: str, tgt_tokenizer: str) -> None:
    """Turn STATE_DICT, torch.save(model.state_dict()) of the seed's Seq2Seq, into a project checkpoint.

    Dimensions and layer count come from the weight shapes; the vocabulary files give the ids.
    """
    from .checkpoint import save_checkpoint
    from .seed import import_seed

    ckpt = import_seed(state_dict, src_vocab, tgt_vocab, pad=pad, unk=unk, sos=sos, eos=eos, src_eos=src_eos,
                       src_tokenizer=src_tokenizer, tgt_tokenizer=tgt_tokenizer)
    save_checkpoint(out_path, ckpt)
    c = ckpt.config
    click.echo(f"checkpoint: {out_path} ({out_path.stat().st_size / 1e6:.3f} MB)")
    click.echo(f"model: vocab {c.src_vocab_size} -> {c.tgt_vocab_size}, emb {c.emb_dim}, hidden {c.hidden_dim}, "
               f"{c.num_layers} layer(s)")


main.add_command(import_cmd, "import")
