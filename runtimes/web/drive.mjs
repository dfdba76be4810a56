#!/usr/bin/env node
// Drive the demo page in headless Chromium like a person: type stdin's lines into the page, press
// Translate, print the outputs the page shows, one per line. Used by tests/test_runtime_web.py.
//
//   node runtimes/web/drive.mjs 'http://127.0.0.1:8000/runtimes/web/?bundle=/bundle/' [--beam-size K]
//       [--n-best N] [--length-penalty A] [--json] < inputs > outputs
//
// The search options, when given, are typed into the page's inputs before Translate (the page also
// reads them from its URL: &beam-size=K&n-best=N&length-penalty=A&json=1).
//
// A page that reports an error (bad bundle, checksum mismatch) -> its message on stderr, exit 2.
//
//   node runtimes/web/drive.mjs --open PAGE_URL < bundle URLs > results
//
// opens each bundle URL (one per line, relative to the page) in the one page, with the page's own
// loader, and prints one JSON line per bundle: {"bundle", "error": null or {"name", "message"}}.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

import { chromium } from "../node/node_modules/playwright-core/index.mjs";
import { splitLines } from "../js/seq2seq.mjs";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
// Offline and quiet: no first-run UI, no background fetches (the sandbox has no network), no GPU.
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const TIMEOUT_MS = 120_000;

async function stdinText() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(Buffer.concat(chunks));
}

/** Wait until the page's status leaves `from`; returns the new state ("ready", "done" or "error"). */
async function settled(page, ...from) {
  await page.waitForFunction((states) => !states.includes(document.getElementById("status").dataset.state), from, { timeout: TIMEOUT_MS });
  return page.locator("#status").getAttribute("data-state");
}

/** Run `use(page, consoleErrors)` on the page at `url` in a fresh headless Chromium. */
async function withPage(url, use) {
  const profile = await mkdtemp(path.join(tmpdir(), "s2s-chromium-"));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const consoleErrors = [];
    page.on("pageerror", (e) => consoleErrors.push(e.message));
    await page.goto(url);
    return await use(page, consoleErrors);
  } finally {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  }
}

/** Each bundle URL opened by the page's loader: {bundle, error: null | {name, message}}. */
async function openEach(page, bundles) {
  await settled(page, "loading"); // the page's own bundle, whatever it is, has loaded or failed
  return page.evaluate(async (urls) => {
    const results = [];
    for (const bundle of urls) {
      try {
        await globalThis.seq2seqLoadBundle(new URL(bundle, location.href).href);
        results.push({ bundle, error: null });
      } catch (e) {
        results.push({ bundle, error: { name: e?.name, message: String(e?.message ?? e) } });
      }
    }
    return results;
  }, bundles);
}

/** Type `lines` and the search `settings` ({input id: value}; json: true ticks the box) into the page,
 * press Translate: {outputs} or {error}. */
async function drive(page, consoleErrors, lines, settings) {
  if ((await settled(page, "loading")) === "error") return { error: await page.locator("#status").textContent() };
  for (const [id, value] of Object.entries(settings)) {
    await (id === "json" ? page.locator("#json").setChecked(value) : page.locator(`#${id}`).fill(value));
  }
  await page.locator("#input").click();
  for (const line of lines) {
    await page.keyboard.insertText(line); // as typed (a Tab key would leave the textarea; insertText keeps it)
    await page.keyboard.press("Enter");
  }
  await page.locator("#translate").click();
  if ((await settled(page, "ready", "busy")) === "error" || consoleErrors.length) {
    return { error: [await page.locator("#status").textContent(), ...consoleErrors].join("; ") };
  }
  return { outputs: await page.locator("#outputs li").allTextContents() };
}

const SETTINGS = ["beam-size", "n-best", "length-penalty"];
let args;
try {
  args = parseArgs({
    allowPositionals: true,
    options: { open: { type: "boolean" }, json: { type: "boolean" }, ...Object.fromEntries(SETTINGS.map((k) => [k, { type: "string" }])) },
  });
} catch (e) {
  args = { positionals: [], error: e.message };
}
const { open, ...settings } = args.values ?? {};
const url = args.positionals[0];
if (!url || args.positionals.length > 1) {
  process.stderr.write("usage: node runtimes/web/drive.mjs [--open] PAGE_URL [--beam-size K] [--n-best N] [--length-penalty A] [--json] < inputs (or bundle URLs)\n");
  process.exit(2);
}
const lines = splitLines(await stdinText());
if (open) {
  const results = await withPage(url, (page) => openEach(page, lines));
  process.stdout.write(results.map((r) => `${JSON.stringify(r)}\n`).join(""));
  process.exit(0);
}
const { outputs, error } = await withPage(url, (page, consoleErrors) => drive(page, consoleErrors, lines, settings));
if (error !== undefined) {
  process.stderr.write(`Error: ${error}\n`);
  process.exitCode = 2;
} else {
  process.stdout.write(outputs.map((o) => `${o}\n`).join(""));
}
