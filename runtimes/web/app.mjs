// Browser host for the shared driver core: files over fetch, sha256 from crypto.subtle, graphs on onnxruntime-web (WASM),
// the manifest checked against seq2seq_export/manifest.schema.json (the file the Python package reads), fetched.
import { Validator } from "../node/node_modules/@cfworker/json-schema/dist/esm/index.js";
import * as ort from "../node/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";

import { ortGraph } from "../js/ort_graph.mjs";
import { BundleError, MANIFEST_FILE, manifestValidator, openBundle, splitLines } from "../js/seq2seq.mjs";

ort.env.wasm.numThreads = 1; // no cross-origin isolation needed, and results do not depend on it

const $ = (id) => document.getElementById(id);
const SCHEMA = new URL("../../seq2seq_export/manifest.schema.json", import.meta.url);
let validator; // a promise, fetched once

function schemaValidator() {
  validator ??= fetch(SCHEMA, { cache: "no-store" }).then(async (response) => {
    if (!response.ok) throw new BundleError(`${SCHEMA}: the manifest schema is missing (HTTP ${response.status}); serve the page with runtimes/web/serve.py`);
    return manifestValidator(Validator, await response.json());
  });
  return validator;
}

/** A response's body, refused as soon as it passes maxBytes (never read whole). */
async function boundedBody(response, url, maxBytes) {
  const chunks = [];
  let size = 0;
  for (const reader = response.body.getReader(); ; ) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > maxBytes) {
      await reader.cancel();
      throw new BundleError(`${url}: larger than the ${maxBytes >> 20} MB a manifest may have; not a manifest written by s2s-export`);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  chunks.reduce((at, c) => (bytes.set(c, at), at + c.length), 0);
  return bytes;
}

function setStatus(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text;
}

/** Open the bundle at `base` (a directory URL ending in '/'), checking every file it fetches. */
async function loadBundle(base) {
  async function readFile(rel, where, maxBytes = Infinity) {
    const url = new URL(rel, base);
    const response = await fetch(url, { cache: "no-store" });
    if (!response.ok) {
      const what = rel === MANIFEST_FILE ? "missing; is ?bundle= the URL of a bundle directory?" : `file listed in the manifest (${where}) is missing`;
      throw new BundleError(`${url}: ${what} (HTTP ${response.status})`);
    }
    return maxBytes === Infinity ? new Uint8Array(await response.arrayBuffer()) : boundedBody(response, url, maxBytes);
  }
  const sha256 = async (bytes) => Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
  const createGraph = (bytes, name) => ortGraph(ort, bytes, name, { executionProviders: ["wasm"] });
  return openBundle({ readFile, sha256, createGraph, validator: await schemaValidator(), label: base });
}
globalThis.seq2seqLoadBundle = loadBundle; // for scripts: open any bundle URL from the console or a test

// The search settings, as the page's inputs hold them (numbers as typed: the core checks them).
const SEARCH_INPUTS = { beamSize: "beam-size", numHypotheses: "n-best", lengthPenalty: "length-penalty" };

/** Fill the settings from the URL (?beam-size=5&n-best=3&length-penalty=1&json=1), where given. */
function searchFromURL(params) {
  for (const id of Object.values(SEARCH_INPUTS)) if (params.has(id)) $(id).value = params.get(id);
  if (params.has("json")) $("json").checked = !["", "0", "false"].includes(params.get("json"));
}

async function translateInput(translator) {
  const lines = splitLines($("input").value);
  const search = Object.fromEntries(Object.entries(SEARCH_INPUTS).map(([key, id]) => [key, $(id).value.trim() === "" ? NaN : Number($(id).value)]));
  const json = $("json").checked; // JSON records, like translate.mjs --json: n-best lists, always scored
  setStatus("busy", `translating ${lines.length} lines...`);
  const outputs = [];
  for await (const round of translator.translationRounds(lines, { ...search, scores: json })) {
    outputs.push(...round.map((r) => (json ? JSON.stringify(r) : r.output)));
  }
  $("outputs").replaceChildren(...outputs.map((text) => Object.assign(document.createElement("li"), { textContent: text })));
  setStatus("done", `translated ${lines.length} lines`);
}

async function main() {
  const params = new URLSearchParams(location.search);
  searchFromURL(params);
  const param = params.get("bundle") ?? "/bundle/";
  const base = new URL(param.endsWith("/") ? param : `${param}/`, location.href).href;
  $("bundle").textContent = base;
  try {
    const translator = await loadBundle(base);
    $("translate").addEventListener("click", () => translateInput(translator).catch((e) => setStatus("error", e.message)));
    $("translate").disabled = false;
    setStatus("ready", "ready");
  } catch (e) {
    setStatus("error", e.message);
  }
}

main();
