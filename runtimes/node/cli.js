#!/usr/bin/env node
"use strict";
/**
 * `node cli.js --model DIR`: JSON lines `{"text": ..., "meta": ...}` on stdin -> one record per line
 * on stdout, `{"text", "meta", "entities": [{"start", "end", "label", "text", "confidence"}]}`,
 * as `python -m spacy_distilner annotate - -` writes them.
 *
 * Like the Python CLI, a bad input line (invalid UTF-8 or JSON, no string text) is reported on
 * stderr and skipped, or with `--on-error fail` stops the run with exit code 1; blank lines are
 * ignored. Messages and the summary go to stderr; a bad option exits with code 2, a bad model with 1.
 */

const { parseArgs } = require("node:util");
const { load, DistilnerError, PRECISIONS } = require("./index");
const { CAPS_VIEW, CAPS_VIEWS } = require("./src/casing");
const { DECODINGS } = require("./src/decode");
const { MAX_BATCH_TOKENS } = require("./src/engine");
const { error } = require("./src/errors");

/** Python's `nlp.max_length`: longer texts are skipped. */
const MAX_CHARS = 1_000_000;
const ON_ERROR = ["skip", "fail"];

const HELP = `Usage: node cli.js --model DIR [options] < input.jsonl > output.jsonl

Tag entities in JSON lines ({"text": ..., "meta": ...}) with a model exported by
\`python -m spacy_distilner export-onnx\`; writes the records of \`python -m spacy_distilner annotate\`.

Options:
  -m, --model DIR            exported model directory (required)
      --precision P          stored graph to run: ${PRECISIONS.join(", ")}
                             (default: fp32, or the only graph the directory holds)
      --onnx FILE            run this ONNX file instead of the stored graph
      --threads N            onnxruntime intra-op threads (default: onnxruntime's)
      --decoding D           ${DECODINGS.join(" or ")} (default viterbi)
      --threshold X          drop entities with a lower confidence, 0..1 (default 0)
      --caps-view V          how the model reads runs of 3+ ALL-CAPS words in a line:
                             ${CAPS_VIEWS.join(", ")} (default ${CAPS_VIEW})
  -b, --batch-size N         texts per batch (default 64)
      --max-batch-tokens N   padded positions per forward pass (default ${MAX_BATCH_TOKENS})
      --on-error E           on a bad input line: skip (report it) or fail (exit 1) (default skip)
      --text-field NAME      JSON field holding the text (default text)
      --meta-field NAME      JSON field copied to the record's meta (default meta)
  -h, --help                 show this help
`;

/** A bad command line: reported with the usage hint, exit code 2. */
class UsageError extends Error {}

/**
 * The options of `argv`, checked.
 * @param {string[]} argv
 */
function parseOptions(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        model: { type: "string", short: "m" },
        precision: { type: "string" },
        onnx: { type: "string" },
        threads: { type: "string" },
        decoding: { type: "string", default: "viterbi" },
        threshold: { type: "string", default: "0" },
        "caps-view": { type: "string", default: CAPS_VIEW },
        "batch-size": { type: "string", short: "b", default: "64" },
        "max-batch-tokens": { type: "string", default: String(MAX_BATCH_TOKENS) },
        "on-error": { type: "string", default: "skip" },
        "text-field": { type: "string", default: "text" },
        "meta-field": { type: "string", default: "meta" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (err) {
    throw new UsageError(/** @type {Error} */ (err).message);
  }
  if (values.help) return null;
  if (!values.model) throw new UsageError("--model DIR is required");
  /** @param {string} name @param {boolean} integer */
  const number = (name, integer) => {
    const value = /** @type {string | undefined} */ (values[/** @type {keyof typeof values} */ (name)]);
    if (value === undefined) return undefined;
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || (integer && !(Number.isInteger(n) && n > 0))) {
      throw new UsageError(
        error("N004", `--${name}`, `'${value}' is not ${integer ? "a positive integer" : "a number"}`).message,
      );
    }
    return n;
  };
  /** @param {string} name @param {string[]} choices */
  const choice = (name, choices) => {
    const value = /** @type {string} */ (values[/** @type {keyof typeof values} */ (name)]);
    if (!choices.includes(value)) throw new UsageError(error("D009", `--${name}`, value, choices).message);
    return value;
  };
  return {
    model: values.model,
    load: {
      precision: values.precision === undefined ? undefined : choice("precision", PRECISIONS),
      onnx: values.onnx,
      threads: number("threads", true),
      decoding: /** @type {"viterbi" | "greedy"} */ (choice("decoding", DECODINGS)),
      threshold: number("threshold", false),
      maxBatchTokens: number("max-batch-tokens", true),
      capsView: /** @type {import("./src/casing").CapsView} */ (choice("caps-view", CAPS_VIEWS)),
    },
    batchSize: /** @type {number} */ (number("batch-size", true)),
    onError: choice("on-error", ON_ERROR),
    textField: /** @type {string} */ (values["text-field"]),
    metaField: /** @type {string} */ (values["meta-field"]),
  };
}

/**
 * The raw lines of `stream`, without their "\n".
 * @param {AsyncIterable<Buffer>} stream
 * @returns {AsyncGenerator<Buffer>}
 */
async function* rawLines(stream) {
  let rest = Buffer.alloc(0);
  for await (const chunk of stream) {
    rest = Buffer.concat([rest, chunk]);
    for (let nl = rest.indexOf(10); nl >= 0; nl = rest.indexOf(10)) {
      yield rest.subarray(0, nl);
      rest = rest.subarray(nl + 1);
    }
  }
  if (rest.length) yield rest;
}

/**
 * A record `{text, meta}`, or the coded error that makes the line bad.
 * @param {string} line
 * @param {string} textField
 * @param {string} metaField
 * @returns {{text: string, meta: any} | {error: DistilnerError}}
 */
function parseRecord(line, textField, metaField) {
  let obj;
  try {
    obj = JSON.parse(line);
  } catch (err) {
    return { error: error("N011", /** @type {Error} */ (err).message) };
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    return { error: error("N012", obj === null ? "null" : Array.isArray(obj) ? "array" : typeof obj) };
  }
  const text = obj[textField];
  if (typeof text !== "string") return { error: error("N013", textField) };
  if (!text.isWellFormed()) return { error: error("N014", textField) };
  const length = Array.from(text).length;
  if (length > MAX_CHARS) return { error: error("N015", length, MAX_CHARS) };
  return { text, meta: obj[metaField] ?? null };
}

/**
 * Records of the JSON lines of `stream` (blank lines ignored), each with its line number.
 * @param {AsyncIterable<Buffer>} stream
 * @param {string} textField
 * @param {string} metaField
 * @returns {AsyncGenerator<{line: number} & ({text: string, meta: any} | {error: DistilnerError})>}
 */
async function* readRecords(stream, textField, metaField) {
  let n = 0;
  for await (const raw of rawLines(stream)) {
    n += 1;
    let line;
    try {
      line = new TextDecoder("utf-8", { fatal: true, ignoreBOM: n > 1 }).decode(raw).replace(/[\r\n]+$/, "");
    } catch {
      yield { line: n, error: error("N010") };
      continue;
    }
    if (line.trim()) yield { line: n, ...parseRecord(line, textField, metaField) };
  }
}

/** @param {string} message */
function say(message) {
  process.stderr.write(`${message}\n`);
}

/**
 * Write `text` to stdout, waiting while its buffer is full.
 * @param {string} text
 */
async function write(text) {
  if (!process.stdout.write(text)) await new Promise((resolve) => process.stdout.once("drain", resolve));
}

/**
 * Run the CLI on `argv`; returns the exit code.
 * @param {string[]} argv
 */
async function main(argv) {
  let options;
  try {
    options = parseOptions(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    say(`✘ ${err.message}\n\n${HELP}`);
    return 2;
  }
  if (!options) {
    process.stdout.write(HELP);
    return 0;
  }
  let ner;
  try {
    ner = await load(options.model, options.load);
  } catch (err) {
    if (!(err instanceof DistilnerError)) throw err;
    say(`✘ ${err.message}`);
    return 1;
  }
  const started = process.hrtime.bigint();
  const stats = { docs: 0, entities: 0, skipped: 0 };
  /** @type {Array<{text: string, meta: any}>} */
  let pending = [];
  const flush = async () => {
    const annotated = await ner.annotate(pending.map((r) => r.text));
    const lines = annotated.map(({ text, entities }, i) => {
      stats.docs += 1;
      stats.entities += entities.length;
      return `${JSON.stringify({ text, meta: pending[i].meta, entities })}\n`;
    });
    pending = [];
    await write(lines.join(""));
  };
  let code = 0;
  for await (const item of readRecords(process.stdin, options.textField, options.metaField)) {
    if ("error" in item) {
      const where = `<stdin>:${item.line}: ${item.error.message}`;
      if (options.onError === "fail") {
        say(`✘ Bad input at ${where}`);
        code = 1;
        break;
      }
      stats.skipped += 1;
      say(`⚠ Skipped ${where}`);
      continue;
    }
    pending.push(item);
    if (pending.length >= options.batchSize) await flush();
  }
  if (pending.length) await flush();
  await ner.close();
  const seconds = Math.max(Number(process.hrtime.bigint() - started) / 1e9, 1e-9);
  if (code === 0) {
    say(
      `✔ Annotated ${stats.docs} docs, ${stats.entities} entities, ${stats.skipped} skipped ` +
        `in ${seconds.toFixed(1)} s: ${(stats.docs / seconds).toFixed(1)} docs/s`,
    );
  }
  return code;
}

process.stdout.on("error", (err) => {
  if (/** @type {NodeJS.ErrnoException} */ (err).code === "EPIPE") process.exit(0); // the reader went away (| head)
  throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    say(`✘ ${err instanceof DistilnerError ? err.message : err.stack}`);
    process.exitCode = 1;
  },
);
