// Node.js host for the shared driver core: files from disk, sha256 from node:crypto, graphs on onnxruntime-node,
// the manifest checked against seq2seq_export/manifest.schema.json (the file the Python package reads).
import { createHash } from "node:crypto";
import { readFile, realpath, stat } from "node:fs/promises";
import path from "node:path";

import { Validator } from "@cfworker/json-schema";
import * as ort from "onnxruntime-node";

import { ortGraph } from "../js/ort_graph.mjs";
import { BundleError, MANIFEST_FILE, manifestValidator, openBundle } from "../js/seq2seq.mjs";

export { BundleError, InputTooLong, Translator, splitLines } from "../js/seq2seq.mjs";

const SCHEMA = new URL("../../seq2seq_export/manifest.schema.json", import.meta.url);
let validator; // built once, on first use

async function schemaValidator() {
  validator ??= manifestValidator(Validator, JSON.parse(await readFile(SCHEMA, "utf8")));
  return validator;
}

/**
 * Open the bundle in directory `dir` -> Translator. Checks the manifest (size, schema, rules between
 * fields), then the path (symlinks included), size and sha256 of each ONNX file before onnxruntime sees it. sessionOptions go to
 * onnxruntime-node's InferenceSession.create (e.g. {intraOpNumThreads: 1}).
 */
export async function loadBundle(dir, { sessionOptions = {} } = {}) {
  const st = await stat(dir).catch(() => null);
  if (!st?.isDirectory()) throw new BundleError(`${dir}: not a bundle directory`);
  const root = await realpath(dir);
  async function read(rel, where, maxBytes = Infinity) {
    const full = path.join(dir, rel);
    const resolved = await realpath(full).catch(() => null);
    if (resolved === null) {
      throw new BundleError(rel === MANIFEST_FILE ? `${full}: missing; is ${dir} a bundle written by s2s-export?` : `${full}: file listed in the manifest (${where}) is missing`);
    }
    if (!resolved.startsWith(root + path.sep)) throw new BundleError(`${full}: ${where} resolves to ${resolved}, outside the bundle directory`);
    const st = await stat(resolved);
    if (!st.isFile()) throw new BundleError(`${full}: ${where} is not a regular file`);
    if (st.size > maxBytes) throw new BundleError(`${full}: larger than the ${maxBytes >> 20} MB a manifest may have; not a manifest written by s2s-export`);
    return new Uint8Array(await readFile(resolved));
  }
  return openBundle({
    readFile: read,
    sha256: async (bytes) => createHash("sha256").update(bytes).digest("hex"),
    createGraph: (bytes, name) => ortGraph(ort, bytes, name, sessionOptions),
    validator: await schemaValidator(),
    label: dir.endsWith(path.sep) ? dir : dir + path.sep,
  });
}
