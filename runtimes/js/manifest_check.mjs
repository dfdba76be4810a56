// Reading manifest.json without trusting it, like seq2seq_export/manifest_check.py: a size cap, strict
// UTF-8 and JSON, the JSON Schema (seq2seq_export/manifest.schema.json, the same file every reader uses),
// then the rules that relate fields to each other. Each problem is one BundleError line naming the
// manifest and the field. The host passes the schema validator (an @cfworker/json-schema Validator),
// as it passes onnxruntime: Node and the browser import that package from different places.

export const MANIFEST_FILE = "manifest.json";
export const SUPPORTED_FORMAT_VERSIONS = [1, 2];
export const MAX_MANIFEST_BYTES = 16 << 20; // seq2seq_export.constants.MAX_MANIFEST_BYTES
export const DEFAULT_MAX_SRC_TOKENS = 1024; // format 1 bundles carry no decoding.max_src_tokens
const MESSAGE_CHARS = 200; // a schema error quoting a long value is cut here
// Longer than any string the schema allows (256 characters at most): refused before the schema's
// patterns run, where a regular expression over megabytes can exhaust the stack.
const MAX_STRING_CHARS = 4096;
// The IO names of format 1 bundles, which carry no "roles" (seq2seq_export/iospec.py).
export const DEFAULT_ROLES = Object.freeze({
  src_tokens: "src_tokens", src_lengths: "src_lengths", prev_tokens: "prev_tokens",
  logits: "logits", next_tokens: "next_tokens", attention: null,
});
// Which graph's inputs or outputs each role names (seq2seq_export.iospec.ROLE_SIDES).
const ROLE_SIDES = {
  src_tokens: ["encoder", "inputs"], src_lengths: ["encoder", "inputs"], prev_tokens: ["decoder_step", "inputs"],
  logits: ["decoder_step", "outputs"], next_tokens: ["decoder_step", "outputs"], attention: ["decoder_step", "outputs"],
};
// Schema keywords that only say "something below failed": the error worth showing is further down.
const WRAPPERS = new Set(["properties", "additionalProperties", "items", "prefixItems", "$ref", "allOf", "anyOf", "oneOf", "if", "then", "else"]);

/** A bundle that cannot be used: bad manifest, missing file, checksum mismatch, graph that does not fit. */
export class BundleError extends Error {
  get name() {
    return "BundleError";
  }
}

/** A value for a message: scalars as JSON (cut), lists and objects by kind (they may nest without end). */
const quote = (v) => (v !== null && typeof v === "object" ? (Array.isArray(v) ? "[...]" : "{...}") : (JSON.stringify(v)?.slice(0, 40) ?? String(v)));

/** The path of the first string in `value` longer than MAX_STRING_CHARS, or null; walked without recursion
 * (a manifest may nest 100k deep), visiting only lists, objects and overlong strings. */
function overlongString(value) {
  const todo = [{ v: value, up: null, key: null }];
  while (todo.length) {
    const node = todo.pop();
    if (typeof node.v === "string") {
      const path = [];
      for (let n = node; n.up !== null; n = n.up) path.unshift(n.key);
      return path;
    }
    for (const key in node.v) { // lists and objects alike
      const v = node.v[key];
      if (typeof v === "string" ? v.length > MAX_STRING_CHARS : v !== null && typeof v === "object") todo.push({ v, up: node, key });
    }
  }
  return null;
}

/** manifest.json bytes -> object: strict UTF-8 (a byte-order mark is refused), JSON, a supported version. */
export function parseManifest(bytes, where = MANIFEST_FILE) {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new BundleError(`${where}: larger than the ${MAX_MANIFEST_BYTES >> 20} MB a manifest may have; not a manifest written by s2s-export`);
  }
  let manifest;
  try {
    manifest = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes));
  } catch (e) {
    throw new BundleError(`${where}: ${e instanceof SyntaxError ? `not valid JSON (${e.message.split("\n")[0]})` : "not valid UTF-8"}`);
  }
  if (manifest === null || typeof manifest !== "object" || Array.isArray(manifest)) {
    throw new BundleError(`${where}: top level must be a JSON object`);
  }
  const version = manifest.format_version;
  if (!SUPPORTED_FORMAT_VERSIONS.includes(version)) {
    throw new BundleError(
      `${where}: manifest format_version ${quote(version)} is not supported ` +
        `(supported: ${SUPPORTED_FORMAT_VERSIONS.join(", ")}); use a driver that matches the exporter or re-export`,
    );
  }
  return manifest;
}

/**
 * A validator for the manifest schema, from the host's @cfworker/json-schema `Validator` class. It stops
 * at the first failing value (shortCircuit): a 16 MB manifest of a million bad tokens is one error,
 * not a million (which took a gigabyte and overflowed the stack).
 */
export function manifestValidator(Validator, schema) {
  return new Validator(schema, "2020-12", true);
}

/** The most specific schema error: the deepest one that is not a wrapper, the last of equals. */
function schemaMessage(errors) {
  const leaves = errors.filter((e) => !WRAPPERS.has(e.keyword));
  const depth = (e) => e.instanceLocation.split("/").length;
  const best = (leaves.length ? leaves : errors).reduce((a, b) => (depth(b) >= depth(a) ? b : a));
  const field = best.instanceLocation.replace(/^#\/?/, "").split("/").map((p) => p.replaceAll("~1", "/").replaceAll("~0", "~")).join(".");
  const message = best.keyword === "false" ? "is not a field a manifest may have" : best.error;
  return `${field || "top level"}: ${message.length > MESSAGE_CHARS ? `${message.slice(0, MESSAGE_CHARS)}...` : message}`;
}

function checkVocab(where, side, vocab) {
  const n = vocab.tokens.length;
  for (const [name, id] of Object.entries(vocab.specials)) {
    if (id !== null && id >= n) throw new BundleError(`${where}: text.${side}.specials.${name}: id ${id} is outside the vocabulary (size ${n})`);
  }
  const seen = new Map();
  vocab.tokens.forEach((tok, i) => {
    if (seen.has(tok)) throw new BundleError(`${where}: text.${side}.tokens: ${quote(tok)} appears twice (ids ${seen.get(tok)} and ${i})`);
    seen.set(tok, i);
  });
}

function checkDecoding(where, manifest) {
  const { decoding, text } = manifest;
  const target = text.target;
  for (const [key, special] of [["start_id", "sos"], ["end_id", "eos"]]) {
    if (decoding[key] >= target.tokens.length) {
      throw new BundleError(`${where}: decoding.${key}: id ${decoding[key]} is outside the target vocabulary (size ${target.tokens.length})`);
    }
    if (decoding[key] !== target.specials[special]) {
      throw new BundleError(`${where}: decoding.${key}: id ${decoding[key]} is not the target vocabulary's ${special} id (${target.specials[special]})`);
    }
  }
  const cfg = manifest.model_config;
  for (const [side, key] of [["source", "src_vocab_size"], ["target", "tgt_vocab_size"]]) {
    const size = text[side].tokens.length;
    if (size !== cfg[key]) {
      throw new BundleError(`${where}: model_config.${key} ${cfg[key]} differs from the ${side} vocabulary's ${size} tokens (wrong vocabulary?)`);
    }
  }
}

/** Each role (format 2) names an input or output of the graph that plays it. */
function checkRoles(where, manifest) {
  for (const [role, [graph, side]] of Object.entries(ROLE_SIDES)) {
    const name = manifest.roles[role];
    const names = manifest.graphs[graph][side].map((t) => t.name);
    if (name !== null && !names.includes(name)) {
      throw new BundleError(`${where}: roles.${role}: ${quote(name)} names no ${side.slice(0, -1)} of the ${graph} graph (${names.join(", ")})`);
    }
  }
}

/**
 * The manifest against the schema (validator: an @cfworker/json-schema Validator for it), then the rules
 * between fields that drivers rely on; returns the roles (format 1: the fixed names). State and memory
 * entries are checked against the graphs by the caller, which also builds the tensors they carry.
 */
export function checkManifest(manifest, where, validator) {
  const long = overlongString(manifest);
  if (long !== null) throw new BundleError(`${where}: ${long.join(".") || "top level"}: a string longer than any manifest field may hold (${MAX_STRING_CHARS} characters)`);
  let result;
  try {
    result = validator.validate(manifest);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e; // call stack exhausted: no manifest is shaped like this
    throw new BundleError(`${where}: too large or too deeply nested to check against the manifest schema (${e.message})`);
  }
  if (!result.valid) throw new BundleError(`${where}: ${schemaMessage(result.errors)}`.replaceAll("\n", "\\n"));
  checkVocab(where, "source", manifest.text.source);
  checkVocab(where, "target", manifest.text.target);
  checkDecoding(where, manifest);
  if (manifest.roles !== undefined) checkRoles(where, manifest);
  for (const name of ["encoder", "decoder_step"]) {
    if (manifest.graphs[name].files.onnx?.external_data?.length) {
      throw new BundleError(`${where}: graphs.${name}.files.onnx.external_data: this driver loads graphs from memory and cannot read external data; re-export without it`);
    }
  }
  return manifest.roles ?? DEFAULT_ROLES;
}
