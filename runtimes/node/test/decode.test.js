"use strict";
// Tags, repair rules, greedy and Viterbi decoding, confidence: against values computed by
// the Python package (decode.py).

const test = require("node:test");
const assert = require("node:assert/strict");
const { TagSet, decode, isValid, spanConfidence, tagPath } = require("../src/decode");

const tagset = (/** @type {string[]} */ tags) =>
  TagSet.fromId2label(Object.fromEntries(tags.map((t, i) => [String(i), t])));
const IOB2 = tagset(["O", "B-PER", "I-PER", "B-ORG", "I-ORG"]);
const BILOU = tagset(["O", "B-PER", "I-PER", "L-PER", "U-PER"]);
const matrix = (/** @type {number[][]} */ rows) => ({
  data: Float32Array.from(rows.flat()),
  n: rows.length,
  width: rows[0].length,
});

test("tag sets parse IOB2 and BILOU and refuse bad tags", () => {
  assert.deepEqual(
    [IOB2.prefixes, IOB2.labels, IOB2.oIndex],
    [["O", "B", "I", "B", "I"], ["", "PER", "PER", "ORG", "ORG"], 0],
  );
  assert.deepEqual(tagset(["O", "B-creative-work", "I-creative-work"]).entityLabels, ["creative-work"]);
  assert.throws(() => tagset(["O", "X-PER"]), /\[D005\]/);
  assert.throws(() => tagset(["O", "B-"]), /\[D005\]/);
  assert.throws(() => tagset(["B-PER", "I-PER"]), /\[D006\]/);
});

test("decode repairs invalid sequences like Python", () => {
  assert.deepEqual(decode([1, 2, 0, 4, 3, 4, 2, 2, 0, 1], IOB2), [
    [0, 2, "PER"],
    [3, 4, "ORG"],
    [4, 6, "ORG"],
    [6, 8, "PER"],
    [9, 10, "PER"],
  ]);
  assert.deepEqual(decode([4, 3, 1, 2, 0, 2, 3, 1], BILOU), [
    [0, 1, "PER"],
    [1, 2, "PER"],
    [2, 4, "PER"],
    [5, 7, "PER"],
    [7, 8, "PER"],
  ]);
  assert.deepEqual(decode([], IOB2), []);
});

test("greedy and Viterbi paths equal Python's (IOB2)", () => {
  const logits = matrix([
    [0, 0, 3, 0, 0],
    [0, 1, 2, 0, 0],
    [4, 0, 0, 0, 3.5],
    [0, 0, 0, 0, 1],
  ]);
  assert.deepEqual(Array.from(tagPath(logits, IOB2, "greedy")), [2, 2, 0, 4]);
  assert.deepEqual(Array.from(tagPath(logits, IOB2, "viterbi")), [1, 2, 0, 0]);
});

test("greedy and Viterbi paths equal Python's (BILOU)", () => {
  const logits = matrix([
    [0, 3, 0, 0, 2.5],
    [0, 0, 1, 0, 0],
    [2, 0, 0, 0, 0],
    [0, 0, 0, 3, 0],
  ]);
  assert.deepEqual(Array.from(tagPath(logits, BILOU, "greedy")), [1, 2, 0, 3]);
  assert.deepEqual(Array.from(tagPath(logits, BILOU, "viterbi")), [1, 2, 2, 3]);
});

test("Viterbi paths are always valid, and equal a valid greedy path", () => {
  let seed = 7;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 8 - 4;
  for (const tags of [IOB2, BILOU]) {
    for (let k = 0; k < 200; k++) {
      const logits = matrix(Array.from({ length: 1 + (k % 9) }, () => Array.from({ length: 5 }, random)));
      const greedy = tagPath(logits, tags, "greedy");
      const best = tagPath(logits, tags, "viterbi");
      assert.ok(isValid(best, tags.transitions));
      if (isValid(greedy, tags.transitions)) assert.deepEqual(best, greedy);
    }
  }
});

test("entity confidence is the mean probability of the words' tags", () => {
  const probs = matrix([
    [0.25, 0.75, 0, 0, 0],
    [0.5, 0, 0.5, 0, 0],
    [1, 0, 0, 0, 0],
  ]);
  assert.equal(spanConfidence(probs, [1, 2, 0], 0, 2), 0.625);
  assert.equal(spanConfidence(probs, [1, 2, 0], 2, 3), 1);
});
