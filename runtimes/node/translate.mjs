#!/usr/bin/env node
// node runtimes/node/translate.mjs --bundle DIR [--max-len N] [--batch-size N]
//     [--beam-size K] [--n-best N] [--length-penalty A] [--json] < inputs > outputs
// One output line per stdin line, exactly like `s2s-translate --bundle DIR --backend onnx`: the best
// hypothesis, or with --json one JSON object {input, output, ids, score, hypotheses} (n-best, scored).
// Errors: one line on stderr and exit 2 (bad option, malformed manifest, missing file, checksum mismatch,
// an input longer than the manifest's decoding.max_src_tokens).
import { parseArgs } from "node:util";

import { searchOptions } from "../js/beam.mjs";
import { BundleError, InputTooLong, loadBundle, splitLines } from "./index.mjs";

const USAGE =
  "usage: node runtimes/node/translate.mjs --bundle DIR [--max-len N] [--batch-size N] [--beam-size K] [--n-best N] [--length-penalty A] [--json] < inputs";

class UsageError extends Error {}

function positiveInt(name, text, fallback) {
  if (text === undefined) return fallback;
  if (!/^\+?\d+$/.test(text.trim()) || Number(text) < 1) throw new UsageError(`--${name} must be a positive integer, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** An integer whose range the library checks (its message is the Python runtime's). */
function integer(name, text, fallback) {
  if (text === undefined) return fallback;
  if (!/^[+-]?\d+$/.test(text.trim())) throw new UsageError(`--${name} must be an integer, got ${JSON.stringify(text)}`);
  return Number(text);
}

function number(name, text, fallback) {
  if (text === undefined) return fallback;
  if (!/^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(text)) throw new UsageError(`--${name} must be a number, got ${JSON.stringify(text)}`);
  return Number(text);
}

function parseOptions(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        bundle: { type: "string" }, "max-len": { type: "string" }, "batch-size": { type: "string" },
        "beam-size": { type: "string" }, "n-best": { type: "string" }, "length-penalty": { type: "string" },
        json: { type: "boolean" }, help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    throw new UsageError(`${e.message.split("\n")[0]} (${USAGE})`);
  }
  if (values.help) return null;
  if (!values.bundle) throw new UsageError(`missing option --bundle (${USAGE})`);
  const search = searchOptions({
    beamSize: integer("beam-size", values["beam-size"], 1),
    numHypotheses: integer("n-best", values["n-best"], 1),
    lengthPenalty: number("length-penalty", values["length-penalty"], 1.0),
  }); // checked before the bundle loads
  return {
    ...search,
    bundle: values.bundle,
    maxLen: positiveInt("max-len", values["max-len"], undefined),
    batchSize: positiveInt("batch-size", values["batch-size"], 32),
    json: values.json ?? false,
  };
}

/** Stdin as lines, like Python's text-mode stdin: strict UTF-8 with a BOM kept as a character. */
async function readLines() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new UsageError("standard input is not valid UTF-8");
  }
  return splitLines(text);
}

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  if (opts === null) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const translator = await loadBundle(opts.bundle);
  const maxLen = opts.maxLen ?? translator.maxLen;
  const lines = await readLines();
  const { batchSize, beamSize, numHypotheses, lengthPenalty, json } = opts;
  const options = { batchSize, maxLen, beamSize, numHypotheses, lengthPenalty, scores: json }; // --json: always scored
  for await (const records of translator.translationRounds(lines, options)) {
    process.stdout.write(records.map((r) => `${json ? JSON.stringify(r) : r.output}\n`).join(""));
  }
}

main().catch((e) => {
  if (!(e instanceof BundleError || e instanceof InputTooLong || e instanceof UsageError || e instanceof RangeError)) throw e;
  process.stderr.write(`Error: ${e.message}\n`);
  process.exitCode = 2;
});
