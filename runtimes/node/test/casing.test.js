"use strict";
// The caps view against values computed by the Python package (casing._caps_words, caps_view, recase);
// tests/test_node_runtime.py also compares both on many generated texts.

const test = require("node:test");
const assert = require("node:assert/strict");
const { CAPS_VIEW, capsWords, capsView, recase } = require("../src/casing");

const HEADLINE = "SOCCER - JAPAN GET LUCKY WIN , CHINA IN SURPRISE DEFEAT .";

test("runs of three or more ALL-CAPS words; a word with a lowercase letter ends a run", () => {
  assert.deepEqual(capsWords(HEADLINE), [[0, 6], [9, 14], [15, 18], [19, 24], [25, 28], [31, 36], [37, 39], [40, 48], [49, 55]]);
  assert.deepEqual(capsWords("Results of the GERMAN FIRST DIVISION matches on Saturday ."), [[15, 21], [22, 27], [28, 36]]);
  assert.deepEqual(capsWords("U.S. OPEN: SAMPRAS BEATS BECKER"), [[0, 4], [5, 10], [11, 18], [19, 24], [25, 31]]);
  assert.deepEqual(capsWords("AB CD EF"), [[0, 2], [3, 5], [6, 8]]);
  assert.deepEqual(capsWords("AB CD"), []);
  assert.deepEqual(capsWords("AB CD", 2), [[0, 2], [3, 5]]);
  assert.deepEqual(capsWords("AB cD EF GH"), []);
  assert.deepEqual(capsWords("Ab AAA BBB"), []);
  assert.deepEqual(capsWords("STRAßE İSTANBUL ÇAĞ"), [], "ß is a lowercase letter");
  assert.deepEqual(capsWords("İSTANBUL ÇAĞ SOKAĞI"), [[0, 8], [9, 12], [13, 19]]);
  assert.deepEqual(capsWords(""), []);
});

test("words without cased letters continue a run without counting", () => {
  assert.deepEqual(capsWords("LONDON 1996-08-30"), []);
  assert.deepEqual(capsWords("AAA 12 -- BBB 3 CCC x"), [[0, 3], [10, 13], [16, 19]]);
  assert.deepEqual(capsWords("1996 AAA BBB CCC 1997"), [[5, 8], [9, 12], [13, 16]], "only counted words are recased");
  assert.deepEqual(capsWords("AAA BBB ǅ CCC"), [[0, 3], [4, 7], [10, 13]], "a titlecase letter is neither upper nor lower");
  assert.deepEqual(capsWords("ǅ AAA BBB"), []);
});

test("a line break ends a run; other separators do not", () => {
  assert.deepEqual(capsWords("AAA BBB\nCCC ddd"), []);
  assert.deepEqual(capsWords("AAA BBB\r\nCCC DDD EEE"), [[9, 12], [13, 16], [17, 20]]);
  assert.deepEqual(capsWords("AAA BBB CCC\nddd"), [[0, 3], [4, 7], [8, 11]]);
  assert.deepEqual(capsWords("x\nAAA BBB CCC"), [[2, 5], [6, 9], [10, 13]]);
  assert.deepEqual(capsWords("AAA BBB\u2028CCC"), [[0, 3], [4, 7], [8, 11]], "only \\n is a line break here, as in Python");
});

test("words are split on Python's whitespace; offsets count code points", () => {
  assert.deepEqual(capsWords("AAA\u00a0BBB\u2003CCC"), [[0, 3], [4, 7], [8, 11]]);
  assert.deepEqual(capsWords("AAA\x1cBBB\x85CCC"), [[0, 3], [4, 7], [8, 11]], "U+001C and U+0085 are whitespace in Python");
  assert.deepEqual(capsWords("AAA\ufeffBBB CCC"), [], "U+FEFF is not");
  assert.deepEqual(capsWords("\u{10400}\u{10401} \u{10402} \u{10403} x"), [[0, 2], [3, 4], [5, 6]]);
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

test("bracketed markup continues a run but is never counted or recased", () => {
  assert.equal(capsView("[PAD] [PAD] [PAD] Mr. John [SEP] [MASK] [CLS]", "title"), "[PAD] [PAD] [PAD] Mr. John [SEP] [MASK] [CLS]");
  assert.equal(capsView("SOCCER [SEP] JAPAN WIN", "title"), "Soccer [SEP] Japan Win");
  assert.equal(capsView("hello\nSOCCER - JAPAN GET LUCKY WIN", "title"), "hello\nSoccer - Japan Get Lucky Win");
});
