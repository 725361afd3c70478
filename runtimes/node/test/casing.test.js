"use strict";
// The caps view against values computed by the Python package (casing._caps_runs, caps_view, recase);
// tests/test_node_runtime.py also compares both on many generated texts.

const test = require("node:test");
const assert = require("node:assert/strict");
const { CAPS_VIEW, capsRuns, capsView, recase } = require("../src/casing");

const HEADLINE = "SOCCER - JAPAN GET LUCKY WIN , CHINA IN SURPRISE DEFEAT .";

test("runs of three or more ALL-CAPS words; a word with a lowercase letter ends a run", () => {
  assert.deepEqual(capsRuns(HEADLINE), [[0, 55]]);
  assert.deepEqual(capsRuns("Results of the GERMAN FIRST DIVISION matches on Saturday ."), [[15, 36]]);
  assert.deepEqual(capsRuns("U.S. OPEN: SAMPRAS BEATS BECKER"), [[0, 31]]);
  assert.deepEqual(capsRuns("AB CD EF"), [[0, 8]]);
  assert.deepEqual(capsRuns("AB CD"), []);
  assert.deepEqual(capsRuns("AB CD", 2), [[0, 5]]);
  assert.deepEqual(capsRuns("AB cD EF GH"), []);
  assert.deepEqual(capsRuns("Ab AAA BBB"), []);
  assert.deepEqual(capsRuns("STRAßE İSTANBUL ÇAĞ"), [], "ß is a lowercase letter");
  assert.deepEqual(capsRuns("İSTANBUL ÇAĞ SOKAĞI"), [[0, 19]]);
  assert.deepEqual(capsRuns(""), []);
});

test("words without cased letters continue a run without counting", () => {
  assert.deepEqual(capsRuns("LONDON 1996-08-30"), []);
  assert.deepEqual(capsRuns("AAA 12 -- BBB 3 CCC x"), [[0, 19]]);
  assert.deepEqual(capsRuns("1996 AAA BBB CCC 1997"), [[5, 16]], "a run starts and ends on counted words");
  assert.deepEqual(capsRuns("AAA BBB ǅ CCC"), [[0, 13]], "a titlecase letter is neither upper nor lower");
  assert.deepEqual(capsRuns("ǅ AAA BBB"), []);
});

test("a line break ends a run; other separators do not", () => {
  assert.deepEqual(capsRuns("AAA BBB\nCCC ddd"), []);
  assert.deepEqual(capsRuns("AAA BBB\r\nCCC DDD EEE"), []);
  assert.deepEqual(capsRuns("AAA BBB CCC\nddd"), [[0, 11]]);
  assert.deepEqual(capsRuns("x\nAAA BBB CCC"), [[2, 13]]);
  assert.deepEqual(capsRuns("AAA BBB\u2028CCC"), [[0, 11]], "only \\n is a line break here, as in Python");
});

test("words are split on Python's whitespace; offsets count code points", () => {
  assert.deepEqual(capsRuns("AAA\u00a0BBB\u2003CCC"), [[0, 11]]);
  assert.deepEqual(capsRuns("AAA\x1cBBB\x85CCC"), [[0, 11]], "U+001C and U+0085 are whitespace in Python");
  assert.deepEqual(capsRuns("AAA\ufeffBBB CCC"), [], "U+FEFF is not");
  assert.deepEqual(capsRuns("\u{10400}\u{10401} \u{10402} \u{10403} x"), [[0, 6]]);
});

test("recase maps one code point to one, keeping those whose mapping is longer", () => {
  const cases = [
    // text, title, lower
    ["ß", "ß", "ß"],
    ["STRAßE", "Straße", "straße"],
    ["ßA", "ßa", "ßa"],
    ["İSTANBUL", "İstanbul", "İstanbul"],
    ["ŉA", "ŉa", "ŉa"],
    ["O'NEILL-SMITH 3RD", "O'Neill-Smith 3Rd", "o'neill-smith 3rd"],
    ["ΣΟΦΙΑ Σ", "Σοφια Σ", "σοφια σ"],
    ["\u{10400}\u{10401}", "\u{10400}\u{10429}", "\u{10428}\u{10429}"],
    ["ǅx ǆ", "Ǆx Ǆ", "ǆx ǆ"],
    ["ΐ", "ΐ", "ΐ"],
    ["ẞ AAA", "ẞ Aaa", "ß aaa"],
  ];
  for (const [text, title, lower] of cases) {
    assert.equal(recase(text, "title"), title, text);
    assert.equal(recase(text, "lower"), lower, text);
    assert.equal(recase(text, "as-given"), text);
    assert.equal(Array.from(recase(text, "title")).length, Array.from(text).length);
  }
  assert.throws(() => recase("A", /** @type {any} */ ("upper")), /\[D009\] Unknown casing 'upper'/);
});

test("the caps view recases the runs only, keeping the text's length", () => {
  assert.equal(CAPS_VIEW, "title");
  assert.equal(capsView(HEADLINE, "title"), "Soccer - Japan Get Lucky Win , China In Surprise Defeat .");
  assert.equal(capsView(HEADLINE, "lower"), "soccer - japan get lucky win , china in surprise defeat .");
  assert.equal(capsView(HEADLINE, "as-given"), HEADLINE);
  const lines = "İSTANBUL ÇAĞ SOKAĞI\nROME 1996-12-06";
  assert.equal(capsView(lines, "title"), "İstanbul Çağ Sokaği\nROME 1996-12-06");
  assert.equal(capsView("AAA 12 -- BBB 3 CCC x", "lower"), "aaa 12 -- bbb 3 ccc x");
  const deseret = "\u{10400}\u{10401} \u{10402} \u{10403} x";
  assert.equal(capsView(deseret, "title"), "\u{10400}\u{10429} \u{10402} \u{10403} x");
  assert.equal(capsView("LONDON 1996-08-30", "title"), "LONDON 1996-08-30");
});
