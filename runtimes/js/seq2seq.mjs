// Driver core for seq2seq-export bundles, shared by Node.js (translate.mjs) and the browser (web/app.mjs).
//
// It mirrors the Python runtime exactly: seq2seq_export/manifest.py (checks), vocab.py (text <-> ids)
// and runtime/greedy.py (the batched greedy loop). It knows nothing about onnxruntime or files: the host
// passes three functions (see openBundle), so the same module runs on onnxruntime-node and onnxruntime-web.

import { BundleError, checkManifest, DEFAULT_MAX_SRC_TOKENS, MANIFEST_FILE, MAX_MANIFEST_BYTES, parseManifest } from "./manifest_check.mjs";

export { BundleError, MANIFEST_FILE, manifestValidator, parseManifest } from "./manifest_check.mjs";

const GRAPH_NAMES = ["encoder", "decoder_step"];
const CHUNK = 512; // lines per round in s2s-translate (TRANSLATE_CHUNK): same batches, so the same results
const BATCH = "batch"; // the symbolic batch dim in the manifest's IO shapes
// Python's str.split() whitespace (JS \s differs: it adds U+FEFF and lacks U+001C-U+001F and U+0085).
const PY_WHITESPACE = /[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;

/** Text as input lines, as s2s-translate reads stdin (seq2seq_export/lines.py): a leading byte-order
 * mark is dropped; only \n ends a line (\r\n is one line end, a lone \r is a character); a final
 * newline adds no line. */
export function splitLines(text) {
  const lines = (text.startsWith("\ufeff") ? text.slice(1) : text).split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines.map((line) => (line.endsWith("\r") ? line.slice(0, -1) : line));
}

/** An input the bundle refuses: more tokens than decoding.max_src_tokens. */
export class InputTooLong extends Error {
  get name() {
    return "InputTooLong";
  }
}

/** Read a FILE record's bytes and check size and sha256 (hex) before they are used. */
export async function verifiedBytes(entry, where, readFile, sha256, label = "") {
  const rel = entry.path; // the schema allows only relative paths inside the bundle
  const bytes = await readFile(rel, where);
  if (bytes.length !== entry.size || (await sha256(bytes)) !== entry.sha256) {
    throw new BundleError(`${label}${rel}: checksum mismatch (${where}): the file was changed or corrupted after export`);
  }
  return bytes;
}

/** Text -> tokens: every code point for 'char', Python str.split() words for 'space'. */
export function tokenize(text, kind) {
  if (kind === "char") return Array.from(text);
  if (kind === "space") return text.split(PY_WHITESPACE).filter((t) => t !== "");
  throw new BundleError(`unknown tokenizer ${JSON.stringify(kind)}: use one of char, space`);
}

// Source normalization steps (seq2seq_export/vocab.py normalize_text): Unicode NFC, and ASCII-only lower-casing
// (toLowerCase() would also lower-case non-ASCII letters, which Python's and C++'s "lower" leave alone).
const NORMALIZE = {
  nfc: (text) => text.normalize("NFC"),
  lower: (text) => text.replace(/[A-Z]+/g, (run) => run.toLowerCase()),
};

/** The manifest's text.normalize steps (absent = none) as one function: each step in order, applied once. */
export function normalizer(steps = []) {
  const unknown = steps.find((s) => !Object.hasOwn(NORMALIZE, s));
  if (unknown !== undefined || new Set(steps).size !== steps.length) {
    throw new BundleError(`text.normalize ${JSON.stringify(steps).slice(0, 80)}: use distinct steps of ${Object.keys(NORMALIZE).join(", ")}`);
  }
  return (text) => steps.reduce((t, s) => NORMALIZE[s](t), text);
}

export function detokenize(tokens, kind) {
  return tokens.join(kind === "char" ? "" : " ");
}

/** One vocabulary: tokens, tokenizer and special ids, as written by Vocab.to_dict(). */
export class Vocab {
  constructor(d) {
    tokenize("", d.tokenizer); // rejects an unknown tokenizer
    this.tokens = d.tokens;
    this.tokenizer = d.tokenizer;
    const sp = d.specials;
    [this.padId, this.unkId, this.sosId, this.eosId] = [sp.pad, sp.unk, sp.sos, sp.eos].map((v) => v ?? null);
    this.index = new Map(d.tokens.map((t, i) => [t, i]));
  }

  /** Text -> ids; unknown tokens map to <unk>; optionally append <eos>. */
  encode(text, addEos = false) {
    const ids = tokenize(text, this.tokenizer).map((tok) => {
      const i = this.index.get(tok) ?? this.unkId;
      if (i === null) throw new BundleError(`token ${JSON.stringify(tok)} is not in the vocabulary and it has no <unk> token`);
      return i;
    });
    if (addEos) ids.push(this.eosId);
    return ids;
  }

  /** Ids -> text, stopping at <eos> and dropping <pad> and <sos>. */
  decode(ids) {
    const out = [];
    for (const i of ids) {
      if (i === this.eosId) break;
      if (i === this.padId || i === this.sosId) continue;
      if (!(i >= 0 && i < this.tokens.length)) throw new BundleError(`id ${i} is outside the vocabulary (size ${this.tokens.length})`);
      out.push(this.tokens[i]);
    }
    return detokenize(out, this.tokenizer);
  }
}

/**
 * The tensors carried between decoder steps, from the manifest's "state" and "memory" entries, as
 * {encoderOutput, decoderInput, decoderOutput, batchAxis}: a state tensor is replaced by the step's
 * `decoderOutput` after every step; a memory tensor (decoderOutput null, e.g. an attention model's
 * encoder_outputs and src_mask) is fed unchanged to every step. batchAxis is the position of "batch"
 * in the decoder input's shape: finished rows leave every carried tensor along it.
 */
function carriedFlows(manifest, prevTokens, where) {
  const encoderOutputs = new Set(manifest.graphs.encoder.outputs.map((t) => t.name));
  const step = manifest.graphs.decoder_step;
  const inputs = new Map(step.inputs.map((t) => [t.name, t]));
  const outputs = new Set(step.outputs.map((t) => t.name));
  const flow = (key, e) => {
    const input = inputs.get(e?.decoder_input);
    const decoderOutput = key === "state" ? e?.decoder_output : null;
    if (!input || !input.shape.includes(BATCH) || !encoderOutputs.has(e.encoder_output) || (key === "state" && !outputs.has(decoderOutput))) {
      throw new BundleError(`${where}: ${key} entry ${JSON.stringify(e)} does not match the encoder and decoder_step graphs' inputs and outputs`);
    }
    return { encoderOutput: e.encoder_output, decoderInput: e.decoder_input, decoderOutput, batchAxis: input.shape.indexOf(BATCH) };
  };
  // The schema makes state a non-empty list, and memory a list (format 1 bundles may lack it).
  const flows = [...manifest.state.map((e) => flow("state", e)), ...(manifest.memory ?? []).map((e) => flow("memory", e))];
  for (const name of inputs.keys()) {
    if (name !== prevTokens && !flows.some((f) => f.decoderInput === name)) {
      throw new BundleError(`${where}: decoder_step input ${JSON.stringify(name)} is fed by no state or memory entry`);
    }
  }
  return flows;
}

/** Keep only `rows` (ascending batch indices) of a {data, dims} tensor along `axis`. */
export function selectRows(t, rows, axis) {
  const outer = t.dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = t.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const batch = t.dims[axis];
  const data = new t.data.constructor(outer * rows.length * inner);
  for (let o = 0; o < outer; o++) {
    rows.forEach((r, k) => data.set(t.data.subarray((o * batch + r) * inner, (o * batch + r + 1) * inner), (o * rows.length + k) * inner));
  }
  return { type: t.type, data, dims: t.dims.map((d, i) => (i === axis ? rows.length : d)) };
}

/** Right-pad id lists into (B, S) int64 with S >= 1, plus the true lengths (B,). */
export function padBatch(seqs, padId) {
  const width = Math.max(1, ...seqs.map((s) => s.length));
  const src = new BigInt64Array(seqs.length * width).fill(BigInt(padId));
  seqs.forEach((s, i) => s.forEach((id, j) => (src[i * width + j] = BigInt(id))));
  return [
    { type: "int64", data: src, dims: [seqs.length, width] }, // (B, S)
    { type: "int64", data: BigInt64Array.from(seqs, (s) => BigInt(s.length)), dims: [seqs.length] }, // (B,)
  ];
}

function checkGraphIO(graph, spec, name) {
  for (const [kind, actual, expected] of [["inputs", graph.inputNames, spec.inputs], ["outputs", graph.outputNames, spec.outputs]]) {
    const want = expected.map((t) => t.name);
    if (actual.join("\n") !== want.join("\n")) {
      throw new BundleError(`${name}: graph ${kind} [${actual}] differ from the manifest's [${want}]`);
    }
  }
}

/** A loaded bundle: translate(lines) -> lines, exactly like `s2s-translate --backend onnx`. */
export class Translator {
  /** A manifest that passed checkManifest (`where` names it in errors), its roles, and its two graphs. */
  constructor(manifest, graphs, roles, where = MANIFEST_FILE) {
    this.manifest = manifest;
    this.encoder = graphs.encoder;
    this.step = graphs.decoder_step;
    this.roles = roles;
    const t = manifest.text;
    this.src = new Vocab(t.source);
    this.tgt = new Vocab(t.target);
    this.srcAppendEos = t.src_append_eos;
    this.normalize = normalizer(t.normalize);
    this.flows = carriedFlows(manifest, roles.prev_tokens, where);
    ({ start_id: this.startId, end_id: this.endId, max_len: this.maxLen } = manifest.decoding);
    this.maxSrcTokens = manifest.decoding.max_src_tokens ?? DEFAULT_MAX_SRC_TOKENS;
    if (this.src.padId === null || this.tgt.padId === null || (this.srcAppendEos && this.src.eosId === null)) {
      throw new BundleError(`${where}: vocabularies lack the <pad> (or source <eos>) token the loop needs`);
    }
  }

  /** Decode one batch of source id lists; each row's target ids without <sos>/<eos>. */
  async greedyBatch(seqs, maxLen) {
    const out = seqs.map(() => []);
    if (seqs.length === 0) return out;
    const [src, lengths] = padBatch(seqs, this.src.padId);
    const { src_tokens: srcTokens, src_lengths: srcLengths, prev_tokens: prevTokens, next_tokens: nextTokens } = this.roles;
    const encoded = await this.encoder.run({ [srcTokens]: src, [srcLengths]: lengths }, [...new Set(this.flows.map((f) => f.encoderOutput))]);
    let carried = this.flows.map((f) => encoded[f.encoderOutput]); // one tensor per flow
    const fetches = [nextTokens, ...this.flows.flatMap((f) => (f.decoderOutput === null ? [] : [f.decoderOutput]))];
    let active = seqs.map((_, i) => i);
    let prev = new BigInt64Array(seqs.length).fill(BigInt(this.startId));
    for (let t = 0; t < maxLen; t++) {
      const feeds = { [prevTokens]: { type: "int64", data: prev, dims: [active.length] } };
      this.flows.forEach((f, k) => (feeds[f.decoderInput] = carried[k]));
      const result = await this.step.run(feeds, fetches); // outputs not fetched (logits, attention) are not copied
      const next = Array.from(result[nextTokens].data, Number); // (B,)
      carried = this.flows.map((f, k) => (f.decoderOutput === null ? carried[k] : result[f.decoderOutput]));
      const keep = [];
      next.forEach((tok, k) => {
        if (tok !== this.endId) {
          out[active[k]].push(tok);
          keep.push(k);
        }
      });
      if (keep.length === 0) break;
      if (keep.length < next.length) {
        active = keep.map((k) => active[k]);
        carried = carried.map((c, k) => selectRows(c, keep, this.flows[k].batchAxis));
      }
      prev = BigInt64Array.from(keep, (k) => BigInt(next[k]));
    }
    return out;
  }

  /** Sort by length (stable), decode in batches of batchSize, return target ids in input order. */
  async translateIds(seqs, { batchSize = 32, maxLen = this.maxLen } = {}) {
    for (const [name, v] of [["batchSize", batchSize], ["maxLen", maxLen]]) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
    }
    const order = seqs.map((_, i) => i).sort((a, b) => seqs[a].length - seqs[b].length || a - b);
    const results = seqs.map(() => []);
    for (let start = 0; start < order.length; start += batchSize) {
      const idx = order.slice(start, start + batchSize);
      const decoded = await this.greedyBatch(idx.map((i) => seqs[i]), maxLen);
      idx.forEach((i, k) => (results[i] = decoded[k]));
    }
    return results;
  }

  /**
   * Lines -> output lines, each read through the bundle's normalize steps. A line with no tokens gives an empty output without running the model; a
   * line with more than decoding.max_src_tokens throws InputTooLong naming it (lines[0] is line firstLine).
   */
  async translate(lines, { firstLine = 1, ...options } = {}) {
    const encoded = lines.map((l) => this.src.encode(this.normalize(l), this.srcAppendEos));
    const long = encoded.findIndex((ids) => ids.length > this.maxSrcTokens);
    if (long >= 0) {
      throw new InputTooLong(
        `input line ${firstLine + long}: ${encoded[long].length} tokens, more than the ${this.maxSrcTokens} this bundle accepts (decoding.max_src_tokens)`,
      );
    }
    const blank = this.srcAppendEos ? 1 : 0; // an empty line encodes to [] or to [<eos>]
    const todo = encoded.flatMap((ids, i) => (ids.length > blank ? [i] : []));
    const decoded = await this.translateIds(todo.map((i) => encoded[i]), options);
    const out = lines.map(() => []);
    todo.forEach((i, k) => (out[i] = decoded[k]));
    return out.map((row) => this.tgt.decode(row));
  }

  /** Many lines, in rounds of 512 as `s2s-translate` reads stdin; yields each round's outputs. */
  async *translateRounds(lines, options = {}) {
    for (let start = 0; start < lines.length; start += CHUNK) {
      yield await this.translate(lines.slice(start, start + CHUNK), { ...options, firstLine: start + 1 });
    }
  }
}

/**
 * Load a bundle through host functions and the manifest schema's validator:
 *   readFile(relpath, where, maxBytes?) -> Promise<Uint8Array>   (throw BundleError when missing, or
 *     when larger than maxBytes, which it checks before reading the whole file)
 *   sha256(bytes) -> Promise<hex string>
 *   createGraph(bytes, name) -> Promise<{inputNames, outputNames, run(feeds, outputNames)}>
 *   validator: an @cfworker/json-schema Validator for seq2seq_export/manifest.schema.json
 * where feeds and results map IO names to {type: "int64"|"float32", data: TypedArray, dims: number[]}.
 * Checks the manifest (schema, then the rules between fields), then the size and sha256 of each ONNX
 * file it reads, then the graph IO names. `label` (e.g. "bundle/") prefixes file names in errors.
 */
export async function openBundle({ readFile, sha256, createGraph, validator, label = "" }) {
  const where = label + MANIFEST_FILE;
  const manifest = parseManifest(await readFile(MANIFEST_FILE, "manifest", MAX_MANIFEST_BYTES), where);
  const roles = checkManifest(manifest, where, validator);
  const graphs = {};
  for (const name of GRAPH_NAMES) {
    const spec = manifest.graphs[name];
    const entry = spec.files.onnx;
    if (!entry) throw new BundleError(`${where}: bundle has no onnx file for the ${name} graph (export with --format onnx)`);
    graphs[name] = await createGraph(await verifiedBytes(entry, `graphs.${name}.files.onnx`, readFile, sha256, label), label + entry.path);
    checkGraphIO(graphs[name], spec, label + entry.path);
  }
  return new Translator(manifest, graphs, roles, where);
}
