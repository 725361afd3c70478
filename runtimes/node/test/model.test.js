"use strict";
// The library and the CLI on an exported model: DISTILNER_NODE_MODEL names its directory, and
// DISTILNER_NODE_PIECES a JSON list of {dir, texts, expected: [{ids, offsets}]} that the Python
// tokenizer of each model directory gave (tests/test_node_runtime.py exports a tiny random model,
// writes both and runs these tests); skipped without them.

const test = require("node:test");
const assert = require("node:assert/strict");
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { load } = require("..");
const { isValid, tagPath } = require("../src/decode");
const { readJson } = require("../src/modeldir");
const { Tokenizer } = require("../src/tokenize");

const MODEL = process.env.DISTILNER_NODE_MODEL;
const PIECES = process.env.DISTILNER_NODE_PIECES;
const skip = MODEL ? false : "set DISTILNER_NODE_MODEL to an exported model directory";
const CLI = path.join(__dirname, "..", "cli.js");
// the JSON schema of Python's record (spacy_distilner.entity_record.DocRecord), written by record_schema.py
const SCHEMA = JSON.parse(fs.readFileSync(path.join(__dirname, "record-schema.json"), "utf8"));
/** @type {Record<string, (value: any) => boolean>} */
const TYPES = {
  integer: Number.isInteger,
  number: (v) => typeof v === "number",
  string: (v) => typeof v === "string",
  null: (v) => v === null,
  array: Array.isArray,
  object: (v) => v !== null && typeof v === "object" && !Array.isArray(v),
};
const TEXTS = [
  "John Smith went to New York with Apple in the United States today.",
  "",
  "Mary said the company in London was new, and Paris (Germany) said so too!",
  Array(40).fill("Google said John went to Paris.").join(" "), // several windows
];

/** @param {string[]} args @param {string} input */
const cli = (args, input) => spawnSync(process.execPath, [CLI, ...args], { input, encoding: "utf8" });

/**
 * Whether `value` fits `schema`, a part of SCHEMA ($ref, anyOf, type, items, additionalProperties, and
 * properties: the fields of a record in their order, the required ones present, no others).
 * @param {any} value
 * @param {any} schema
 * @returns {boolean}
 */
function fits(value, schema) {
  if (schema.$ref) return fits(value, SCHEMA.$defs[schema.$ref.split("/").pop()]);
  if (schema.anyOf) return schema.anyOf.some((/** @type {any} */ s) => fits(value, s));
  if (schema.type && !TYPES[schema.type](value)) return false;
  if (schema.items && !value.every((/** @type {any} */ v) => fits(v, schema.items))) return false;
  const entries = schema.type === "object" ? Object.entries(value) : [];
  if (schema.additionalProperties && !entries.every(([, v]) => fits(v, schema.additionalProperties))) return false;
  if (!schema.properties) return true;
  const names = Object.keys(schema.properties);
  return (
    JSON.stringify(Object.keys(value)) === JSON.stringify(names.filter((n) => n in value)) &&
    (schema.required ?? []).every((/** @type {string} */ n) => n in value) &&
    entries.every(([name, v]) => fits(v, schema.properties[name]))
  );
}

test("a record fits the schema only with its fields, in order, of their types", () => {
  const entity = { start: 0, end: 4, label: "PER", text: "John", confidence: 0.9 };
  const token = { text: "John", start: 0, end: 4, probs: { O: 0.1, "B-PER": 0.9 } };
  assert.ok(fits({ text: "John", meta: { id: 1 }, entities: [entity] }, SCHEMA));
  assert.ok(fits({ text: "John", meta: null, entities: [], tokens: [token] }, SCHEMA));
  assert.ok(fits({ ...entity, confidence: null }, SCHEMA.$defs.EntityRecord));
  assert.ok(!fits({ text: "John", entities: [entity] }, SCHEMA), "no meta");
  assert.ok(!fits({ meta: null, text: "John", entities: [] }, SCHEMA), "another order");
  assert.ok(!fits({ text: "John", meta: null, entities: [{ ...entity, extra: 1 }] }, SCHEMA), "another field");
  assert.ok(!fits({ ...entity, start: 0.5 }, SCHEMA.$defs.EntityRecord), "another type");
  assert.ok(!fits({ ...token, probs: { O: "0.1" } }, SCHEMA.$defs.TokenRecord), "a probability that is no number");
});

test("annotate: entities are spans of the text, in order, with their confidence", { skip }, async () => {
  const ner = await load(/** @type {string} */ (MODEL));
  const records = await ner.annotate(TEXTS);
  assert.deepEqual(
    records.map((r) => r.text),
    TEXTS,
  );
  assert.deepEqual(records[1].entities, []);
  assert.ok(
    records.some((r) => r.entities.length),
    "the tiny model predicts entities",
  );
  for (const { text, entities } of records) {
    let end = 0;
    for (const e of entities) {
      assert.ok(fits(e, SCHEMA.$defs.EntityRecord), `not an entity record: ${JSON.stringify(e)}`);
      assert.ok(e.start >= end && e.end > e.start && ner.labels.includes(e.label));
      assert.equal(Array.from(text).slice(e.start, e.end).join(""), e.text);
      assert.ok(e.confidence > 0 && e.confidence <= 1);
      end = e.end;
    }
  }
  assert.deepEqual((await ner.annotate([TEXTS[3]]))[0], records[3], "a text's entities do not depend on its batch");
  await ner.close();
});

test("threshold drops entities below it; greedy and viterbi decoding", { skip }, async () => {
  const all = await load(/** @type {string} */ (MODEL));
  const some = await load(/** @type {string} */ (MODEL), { threshold: 0.6 });
  const greedy = await load(/** @type {string} */ (MODEL), { decoding: "greedy" });
  const [a, b, g] = await Promise.all([all, some, greedy].map((n) => n.annotate(TEXTS)));
  assert.deepEqual(
    b,
    a.map((r) => ({ ...r, entities: r.entities.filter((e) => e.confidence >= 0.6) })),
  );
  assert.equal(g.length, TEXTS.length);
  const scores = await all.engine.wordScores([TEXTS[0]]);
  assert.ok(isValid(tagPath(scores[0].logits, all.engine.tagset, "viterbi"), all.engine.tagset.transitions));
  await Promise.all([all, some, greedy].map((n) => n.close()));
});

test("bad options and missing model files give coded errors", { skip }, async () => {
  const dir = /** @type {string} */ (MODEL);
  await assert.rejects(load(path.join(dir, "nope")), /\[D001\]/);
  await assert.rejects(load(dir, { precision: "bf16" }), /\[D009\]/);
  await assert.rejects(load(dir, { decoding: /** @type {any} */ ("beam") }), /\[D009\]/);
  await assert.rejects(load(dir, { capsView: /** @type {any} */ ("upper") }), /\[D009\] Unknown caps_view 'upper'/);
  await assert.rejects(load(dir, { threshold: 2 }), /\[D013\]/);
  await assert.rejects(load(dir, { maxBatchTokens: 8 }), /\[D008\]/);
  await assert.rejects(load(dir, { onnx: path.join(dir, "missing.onnx") }), /\[N001\].*missing\.onnx/);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "distilner-node-"));
  for (const name of ["config.json", "model.onnx"]) fs.copyFileSync(path.join(dir, name), path.join(tmp, name));
  await assert.rejects(load(tmp), /\[N001\].*tokenizer\.json/);
  fs.writeFileSync(path.join(tmp, "tokenizer.json"), "{not json");
  await assert.rejects(load(tmp), /\[D022\].*tokenizer\.json.*not valid JSON/);
  fs.rmSync(tmp, { recursive: true });
  const ner = await load(dir);
  await assert.rejects(ner.annotate([/** @type {any} */ (3)]), /\[N004\]/);
  await ner.close();
});

test("CLI: one record per good line, bad lines reported and skipped", { skip }, () => {
  const input = [
    '{"text": "John Smith went to London.", "meta": {"id": 1}}',
    "not json",
    "",
    '{"text": 5}',
    "[1]",
    '{"text": ""}',
  ];
  const run = cli(["--model", /** @type {string} */ (MODEL)], input.join("\n") + "\n");
  assert.equal(run.status, 0, run.stderr);
  const records = run.stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line));
  assert.deepEqual(
    records.map((r) => r.meta),
    [{ id: 1 }, null],
  );
  for (const record of records) assert.ok(fits(record, SCHEMA), `not a record: ${JSON.stringify(record)}`);
  assert.deepEqual(records[1].entities, []);
  assert.match(run.stderr, /Skipped <stdin>:2: \[N011\] invalid JSON/);
  assert.match(run.stderr, /Skipped <stdin>:4: \[N013\] no string field 'text'/);
  assert.match(run.stderr, /Skipped <stdin>:5: \[N012\] expected a JSON object, got array/);
  assert.match(run.stderr, /Annotated 2 docs, \d+ entities, 3 skipped/);
});

test("CLI: --on-error fail stops with exit code 1; bad options exit 2, a bad model 1", { skip }, () => {
  const dir = /** @type {string} */ (MODEL);
  const failed = cli(["--model", dir, "--on-error", "fail"], '{"text": "a"}\n{"text": "\\ud800"}\n{"text": "b"}\n');
  assert.equal(failed.status, 1);
  assert.match(failed.stderr, /Bad input at <stdin>:2: \[N014\] field 'text' holds a lone surrogate/);
  assert.equal(failed.stdout.trim().split("\n").length, 1, "the records before the bad line are written");
  assert.equal(cli(["--model", dir, "--threshold", "x"], "").status, 2);
  assert.equal(cli(["--model", dir, "--decoding", "beam"], "").status, 2);
  assert.equal(cli(["--model", dir, "--caps-view", "upper"], "").status, 2);
  assert.equal(cli(["--bogus"], "").status, 2);
  const missing = cli(["--model", path.join(dir, "nope")], "");
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /\[D001\]/);
});

test("without --precision the only stored graph runs; several without fp32 need a precision", { skip }, async () => {
  const dir = /** @type {string} */ (MODEL);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "distilner-node-"));
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.isFile() && !entry.name.endsWith(".onnx")) {
      fs.copyFileSync(path.join(dir, entry.name), path.join(tmp, entry.name));
    }
  }
  fs.copyFileSync(path.join(dir, "model.onnx"), path.join(tmp, "model_int8.onnx")); // the only graph: int8's name
  const [fp32, only] = await Promise.all([load(dir), load(tmp)]);
  assert.deepEqual(await only.annotate(TEXTS), await fp32.annotate(TEXTS));
  await Promise.all([fp32, only].map((n) => n.close()));
  await assert.rejects(load(tmp, { precision: "fp32" }), /\[N001\].*model\.onnx/);
  const input = `${JSON.stringify({ text: TEXTS[0] })}\n`;
  const [stored, given] = [cli(["--model", tmp], input), cli(["--model", dir], input)];
  assert.equal(stored.status, 0, stored.stderr);
  assert.equal(stored.stdout, given.stdout);
  fs.copyFileSync(path.join(dir, "model.onnx"), path.join(tmp, "model_fp16.onnx"));
  await assert.rejects(load(tmp), /\[N005\].*int8, fp16/);
  const several = cli(["--model", tmp], input);
  assert.equal(several.status, 1);
  assert.match(several.stderr, /\[N005\]/);
  const fp16 = await load(tmp, { precision: "fp16" });
  await fp16.close();
  fs.rmSync(tmp, { recursive: true });
});

test(
  "pieces equal those of the Python tokenizer of each model",
  { skip: PIECES ? false : "set DISTILNER_NODE_PIECES" },
  () => {
    for (const { dir, texts, expected } of JSON.parse(fs.readFileSync(/** @type {string} */ (PIECES), "utf8"))) {
      const file = path.join(dir, "tokenizer.json");
      const tokenizer = Tokenizer.fromSpec(
        readJson(file, true),
        readJson(path.join(dir, "tokenizer_config.json"), false) ?? {},
        file,
      );
      texts.forEach((/** @type {string} */ text, /** @type {number} */ i) => {
        const { ids, offsets } = tokenizer.encode(text);
        assert.deepEqual({ ids, offsets }, expected[i], `${dir}: ${JSON.stringify(text)}`);
      });
    }
  },
);
