"use strict";
/**
 * The text the model reads (Python's `casing.caps_view`): runs of ALL-CAPS words — headlines, forms,
 * shouting — shown lowercased or Title Cased, everything else as given.
 *
 * Case changes map one character at a time and keep a character where its case mapping is not a single
 * code point ("ß" upper is "SS", "İ" lower is "i̇"), so the view has as many code points as the text
 * and every offset the tokenizer reports on it indexes the text. Character classes follow Python's:
 * `str.islower`/`str.isupper` of one character are `\p{Lowercase}`/`\p{Uppercase}`, `str.isalpha` is
 * `\p{L}`, and words are `\S+` with Python's whitespace; the tables are those of Node's ICU, newer than
 * Python's, so a character assigned in a recent Unicode version may be read differently.
 */

const { error } = require("./errors");

/** @typedef {"as-given" | "lower" | "title"} CapsView */

/** @type {CapsView[]} */
const CAPS_VIEWS = ["as-given", "lower", "title"];
/**
 * Python's default `caps_view`: runs of ALL-CAPS words read Title Cased.
 * @type {CapsView}
 */
const CAPS_VIEW = "title";
/** Counted ALL-CAPS words a run needs (Python's `min_words` default). */
const MIN_WORDS = 3;

const LOWER = /^\p{Lowercase}$/u;
const UPPER = /^\p{Uppercase}$/u;
const LETTER = /^\p{L}$/u;
/** Python's `\s` in a str pattern: JavaScript's `\s` with U+001C–U+001F and U+0085, without U+FEFF. */
const SPACE = /^[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/u;

/** @param {string} ch */
const isLower = (ch) => LOWER.test(ch);
/** @param {string} ch */
const isUpper = (ch) => UPPER.test(ch);

/**
 * `ch` lowercased or uppercased, or `ch` itself where that is not one code point.
 * @param {string} ch  one code point
 * @param {boolean} upper
 */
function mapChar(ch, upper) {
  const mapped = upper ? ch.toUpperCase() : ch.toLowerCase();
  return Array.from(mapped).length === 1 ? mapped : ch;
}

/**
 * Code points `chars` lowercased or Title Cased (see `recase`).
 * @param {string[]} chars
 * @param {CapsView} casing
 * @returns {string[]}
 */
function recaseChars(chars, casing) {
  if (casing === "as-given") return chars;
  if (casing === "lower") return chars.map((ch) => mapChar(ch, false));
  if (casing === "title") {
    let prevLetter = false;
    return chars.map((ch) => {
      const out = mapChar(ch, !prevLetter);
      prevLetter = LETTER.test(ch);
      return out;
    });
  }
  throw error("D009", "casing", casing, CAPS_VIEWS);
}

/**
 * `text` lowercased or Title Cased (the first letter of each run of letters upper, the rest lower, as
 * Python's `str.title` does), one code point for one code point; "as-given" returns it unchanged.
 * @param {string} text
 * @param {CapsView} casing
 * @returns {string}
 */
function recase(text, casing) {
  return recaseChars(Array.from(text), casing).join("");
}

/**
 * Bracketed markup (`[PAD]`, `[SEP]`, `<s>`): continues a run, never counted or recased (Python's `_MARKUP`;
 * its `\s` is left out, as a word holds no whitespace, and JavaScript's `\s` would also exclude U+FEFF).
 */
const MARKUP = /^(?:\[[^\]]*\]|<[^>]*>)$/u;

/**
 * Code point ranges `[start, end)` of the ALL-CAPS words that stand in runs of at least `minWords` of
 * them within a line, as Python's `_caps_words` finds them: words without cased letters (numbers, dashes,
 * dates) and bracketed markup continue a run without counting; a word with a lowercase letter or a line
 * break ends it.
 * @param {string} text
 * @param {number} [minWords]
 * @returns {Array<[number, number]>}
 */
function capsWords(text, minWords = MIN_WORDS) {
  const chars = Array.from(text);
  /** @type {Array<[number, number]>} */
  const found = [];
  /** @type {Array<[number, number]>} */
  let run = [];
  let last = 0;
  const flush = () => {
    if (run.length >= minWords) found.push(...run);
    run = [];
  };
  for (let a = 0; a < chars.length; ) {
    if (SPACE.test(chars[a])) {
      a++;
      continue;
    }
    let b = a + 1;
    while (b < chars.length && !SPACE.test(chars[b])) b++;
    const word = chars.slice(a, b);
    const lower = word.some(isLower);
    if (lower || chars.slice(last, a).includes("\n")) flush();
    last = b;
    if (!lower && !MARKUP.test(word.join("")) && word.some(isUpper)) run.push([a, b]);
    a = b;
  }
  flush();
  return found;
}

/**
 * The text the model reads: the words of runs of `minWords` or more ALL-CAPS words in `view` ("lower" or "title"),
 * everything else as given; "as-given" returns `text`. As many code points as `text`.
 * @param {string} text
 * @param {CapsView} view
 * @param {number} [minWords]
 * @returns {string}
 */
function capsView(text, view, minWords = MIN_WORDS) {
  if (view === "as-given") return text;
  const chars = Array.from(text);
  for (const [a, b] of capsWords(text, minWords)) {
    recaseChars(chars.slice(a, b), view).forEach((ch, k) => {
      chars[a + k] = ch;
    });
  }
  return chars.join("");
}

module.exports = { CAPS_VIEW, CAPS_VIEWS, capsWords, capsView, recase };
