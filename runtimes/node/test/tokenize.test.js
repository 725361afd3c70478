"use strict";
// The JS tokenizer against the Hugging Face `tokenizers` library (tokenizer-fixture.json,
// made by tokenizer_fixture.py).

const test = require("node:test");
const assert = require("node:assert/strict");
const fixture = /** @type {any} */ (require("./tokenizer-fixture.json"));
const { Tokenizer, normalizerSteps, splitWords } = require("../src/tokenize");

for (const name of ["cased", "uncased"]) {
  test(`${name}: piece ids and offsets equal those of tokenizers`, () => {
    const tokenizer = Tokenizer.fromSpec(fixture[name].spec, {}, "tokenizer.json");
    fixture.texts.forEach((/** @type {string} */ text, /** @type {number} */ i) => {
      const { ids, offsets } = tokenizer.encode(text);
      assert.deepEqual({ ids, offsets }, fixture[name].expected[i], JSON.stringify(text));
    });
  });
}

test("words cover their pieces and the marks folded into them", () => {
  const tokenizer = Tokenizer.fromSpec(fixture.cased.spec, {}, "tokenizer.json");
  const text = "Mu\u0308 John\u200b, e\u0301t\u00e9";
  const { words, offsets } = tokenizer.encode(text);
  const chars = Array.from(text);
  assert.deepEqual(
    words.map((w) => chars.slice(w.start, w.end).join("")),
    ["Mu\u0308", "John\u200b", ",", "e\u0301t\u00e9"],
  );
  for (const w of words) {
    assert.equal(offsets[w.firstPiece][0], w.start);
    assert.ok(offsets[w.endPiece - 1][1] <= w.end);
  }
});

test("special tokens and the pad token come from the spec and tokenizer_config.json", () => {
  const tokenizer = Tokenizer.fromSpec(fixture.cased.spec, { pad_token: "[MASK]", model_max_length: 64 }, "t.json");
  assert.deepEqual([tokenizer.prefixIds, tokenizer.suffixIds, tokenizer.padId, tokenizer.maxLength], [[2], [3], 4, 64]);
});

test("NFC is added unless the normalizer composes", () => {
  assert.equal(
    normalizerSteps({ type: "Sequence", normalizers: [{ type: "NFC" }, { type: "Lowercase" }] }, "t").length,
    2,
  );
  assert.equal(normalizerSteps({ type: "Lowercase" }, "t").length, 2);
  assert.equal(normalizerSteps(null, "t").length, 1);
});

test("splitWords drops whitespace and isolates punctuation", () => {
  const words = splitWords(Array.from("U.S.-based  (x)"));
  assert.deepEqual(words, [
    [0, 1],
    [1, 2],
    [2, 3],
    [3, 4],
    [4, 5],
    [5, 10],
    [12, 13],
    [13, 14],
    [14, 15],
  ]);
});

test("unsupported tokenizers are refused with a coded error", () => {
  const spec = fixture.cased.spec;
  assert.throws(
    () => Tokenizer.fromSpec({ ...spec, model: { ...spec.model, type: "BPE" } }, {}, "t.json"),
    /\[N002\].*model 'BPE'/,
  );
  assert.throws(
    () => Tokenizer.fromSpec({ ...spec, normalizer: { type: "Precompiled" } }, {}, "t.json"),
    /\[N002\].*Precompiled/,
  );
  assert.throws(() => Tokenizer.fromSpec({ ...spec, pre_tokenizer: { type: "Whitespace" } }, {}, "t.json"), /\[N002\]/);
});
