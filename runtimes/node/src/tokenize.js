"use strict";
/**
 * Stage 1 — tokenize: a text -> word pieces with character offsets, and the words they form.
 *
 * A pure-JS port of the Hugging Face `tokenizers` pipeline of a BERT WordPiece `tokenizer.json`:
 * the normalizer (NFC/NFD/NFKC/NFKD, `BertNormalizer`, `Lowercase`), the `BertPreTokenizer`
 * (split on whitespace, isolate punctuation) and the greedy longest-match `WordPiece` model.
 * As `tokenize.normalize_unicode` does in Python, NFC runs first unless the normalizer already
 * composes, so "Mu\u0308ller" reads as "Müller".
 *
 * Words are what entities are made of: the pre-tokenizer's splits, except that an abbreviation of
 * single letters with periods ("U.S.", "P.") is one word, as it is one spaCy token (Python tags
 * spaCy tokens; there a token's first piece decides its tag, here a word's).
 *
 * Offsets are Python's: code point indices into the original text, `[start, end)`. Every
 * normalized character remembers the original character it came from, with the rules of
 * `tokenizers`' `NormalizedString` (a composed character comes from its first source character,
 * an inserted one from the character before it), so piece offsets equal those of the Python
 * tokenizer. Character classes use the Unicode tables of Node's ICU; `tokenizers` has older ones,
 * so a character assigned in a recent Unicode version (a new punctuation or combining mark) may
 * split differently.
 */

const { error } = require("./errors");

/**
 * Text under normalization: `chars[i]` is one code point, `source[i]` the index of the original
 * code point it comes from.
 * @typedef {{chars: string[], source: number[]}} Normalized
 * @typedef {(text: Normalized) => Normalized} Step
 */

/**
 * A word: characters `[start, end)` of the text, and its pieces `[firstPiece, endPiece)`.
 * @typedef {{start: number, end: number, firstPiece: number, endPiece: number}} Word
 */

/**
 * The pieces of one text: ids, `[start, end)` character offsets, and the words they form.
 * @typedef {{ids: number[], offsets: Array<[number, number]>, words: Word[]}} DocPieces
 */

const WHITESPACE = /^\p{White_Space}$/u;
const CONTROL = /^[\p{Cc}\p{Cf}\p{Co}\p{Cs}]$/u; // `tokenizers`' is_other(), without tab, LF, CR
const PUNCTUATION = /^[!-/:-@[-`{-~\p{P}]$/u; // ASCII punctuation or Unicode P*
const NONSPACING_MARK = /^\p{Mn}$/u;
const LETTER = /^\p{L}$/u;
const PERIOD = /^\.$/;
const CONTINUES = /^[\p{M}\u1160-\u11ff]$/u; // marks and Hangul vowel/final jamo compose with what precedes them
const CJK = [
  [0x3400, 0x4dbf],
  [0x4e00, 0x9fff],
  [0xf900, 0xfaff],
  [0x20000, 0x2a6df],
  [0x2a700, 0x2b81f],
  [0x2b920, 0x2ceaf],
  [0x2f800, 0x2fa1f],
];
const COMPOSING = new Set(["NFC", "NFKC", "Precompiled"]);

/**
 * A step that replaces each character by `fn(char)`: "" drops it, several characters all come
 * from its source.
 * @param {(char: string) => string} fn
 * @returns {Step}
 */
function perChar(fn) {
  return ({ chars, source }) => {
    /** @type {Normalized} */
    const out = { chars: [], source: [] };
    chars.forEach((char, i) => {
      for (const c of fn(char)) {
        out.chars.push(c);
        out.source.push(source[i]);
      }
    });
    return out;
  };
}

/**
 * Unicode normalization `form`, one base character and the marks after it at a time: the first
 * output character comes from the first input one, the others from the inputs they end on
 * (a decomposed extra one shares its predecessor's source).
 * @param {"NFC" | "NFD" | "NFKC" | "NFKD"} form
 * @returns {Step}
 */
function unicodeForm(form) {
  return (text) => {
    const { chars, source } = text;
    const joined = chars.join("");
    if (joined.normalize(form) === joined) return text;
    /** @type {Normalized} */
    const out = { chars: [], source: [] };
    for (let i = 0; i < chars.length;) {
      let j = i + 1;
      while (j < chars.length && CONTINUES.test(chars[j])) j++;
      const result = Array.from(chars.slice(i, j).join("").normalize(form));
      const shift = j - i - result.length;
      result.forEach((c, k) => {
        out.chars.push(c);
        out.source.push(source[i + (k === 0 ? 0 : Math.min(Math.max(k + shift, 0), j - i - 1))]);
      });
      i = j;
    }
    return out;
  };
}

/** @param {string} char */
function isCjk(char) {
  const cp = /** @type {number} */ (char.codePointAt(0));
  return CJK.some(([lo, hi]) => cp >= lo && cp <= hi);
}

/** `BertNormalizer(clean_text)`: drop NUL, U+FFFD and control characters; whitespace becomes a space. */
const cleanText = perChar((c) => {
  if (c === "\t" || c === "\n" || c === "\r") return " ";
  if (c === "\0" || c === "\ufffd" || CONTROL.test(c)) return "";
  return WHITESPACE.test(c) ? " " : c;
});
/** `BertNormalizer(handle_chinese_chars)`: spaces around CJK ideographs. */
const padCjk = perChar((c) => (isCjk(c) ? ` ${c} ` : c));
const dropNonspacingMarks = perChar((c) => (NONSPACING_MARK.test(c) ? "" : c));
/** `strip_accents`: NFD, then drop the non-spacing marks. */
const stripAccents = (/** @type {Normalized} */ text) => dropNonspacingMarks(unicodeForm("NFD")(text));
/** Lowercase each character on its own (no context-dependent final sigma, as in Rust). */
const lowercase = perChar((c) => c.toLowerCase());

/**
 * The normalization steps of a `tokenizer.json` normalizer spec, NFC first unless it composes.
 * @param {any} spec  the `normalizer` entry (null: none)
 * @param {string} file  for error messages
 * @returns {Step[]}
 */
function normalizerSteps(spec, file) {
  const types = new Set();
  /** @returns {Step[]} */
  const steps = (/** @type {any} */ s) => {
    types.add(s.type);
    switch (s.type) {
      case "Sequence":
        return s.normalizers.flatMap(steps);
      case "NFC":
      case "NFD":
      case "NFKC":
      case "NFKD":
        return [unicodeForm(s.type)];
      case "Lowercase":
        return [lowercase];
      case "BertNormalizer": {
        const strip = s.strip_accents ?? s.lowercase;
        return [
          ...(s.clean_text ? [cleanText] : []),
          ...(s.handle_chinese_chars ? [padCjk] : []),
          ...(strip ? [stripAccents] : []),
          ...(s.lowercase ? [lowercase] : []),
        ];
      }
      default:
        throw error("N002", file, `normalizer '${s.type}'`);
    }
  };
  const list = spec ? steps(spec) : [];
  return [...types].some((t) => COMPOSING.has(t)) ? list : [unicodeForm("NFC"), ...list];
}

/**
 * The special-token ids before and after a window's pieces, from a `post_processor` spec.
 * @param {any} spec
 * @param {string} file
 * @returns {[number[], number[]]}
 */
function specialLayout(spec, file) {
  if (spec?.type === "BertProcessing") return [[spec.cls[1]], [spec.sep[1]]];
  if (spec?.type !== "TemplateProcessing") throw error("N002", file, `post_processor '${spec?.type}'`);
  const at = spec.single.findIndex((/** @type {any} */ item) => item.Sequence);
  const ids = (/** @type {any[]} */ items) => items.flatMap((item) => spec.special_tokens[item.SpecialToken.id].ids);
  return [ids(spec.single.slice(0, at)), ids(spec.single.slice(at + 1))];
}

class Tokenizer {
  /**
   * @param {object} options
   * @param {Map<string, number>} options.vocab  piece -> id
   * @param {number} options.unkId
   * @param {string} options.prefix  continuing-subword prefix ("##")
   * @param {number} options.maxChars  longer words are one unknown piece
   * @param {Step[]} options.steps  the normalizer
   * @param {number[]} options.prefixIds  special tokens before a window ([CLS])
   * @param {number[]} options.suffixIds  special tokens after it ([SEP])
   * @param {number} options.padId
   * @param {number} options.maxLength  the tokenizer's `model_max_length`
   */
  constructor({ vocab, unkId, prefix, maxChars, steps, prefixIds, suffixIds, padId, maxLength }) {
    this.vocab = vocab;
    this.unkId = unkId;
    this.prefix = prefix;
    this.maxChars = maxChars;
    this.steps = steps;
    this.prefixIds = prefixIds;
    this.suffixIds = suffixIds;
    this.padId = padId;
    this.maxLength = maxLength;
  }

  /**
   * The tokenizer of a model directory: `tokenizer.json`, and `tokenizer_config.json` if present
   * (pad token, `model_max_length`).
   * @param {any} spec  parsed `tokenizer.json`
   * @param {any} config  parsed `tokenizer_config.json` ({} when absent)
   * @param {string} file  path of `tokenizer.json`, for error messages
   */
  static fromSpec(spec, config, file) {
    const model = spec.model ?? {};
    if (model.type !== "WordPiece") throw error("N002", file, `model '${model.type}'`);
    if (spec.pre_tokenizer?.type !== "BertPreTokenizer") {
      throw error("N002", file, `pre_tokenizer '${spec.pre_tokenizer?.type}'`);
    }
    const plain = (spec.added_tokens ?? []).filter((/** @type {any} */ t) => !t.special);
    if (plain.length)
      throw error("N002", file, `non-special added tokens (${plain.map((/** @type {any} */ t) => t.content)})`);
    const vocab = new Map(Object.entries(model.vocab));
    const pad = typeof config.pad_token === "object" ? config.pad_token?.content : config.pad_token;
    const [prefixIds, suffixIds] = specialLayout(spec.post_processor, file);
    return new Tokenizer({
      vocab,
      unkId: /** @type {number} */ (vocab.get(model.unk_token)),
      prefix: model.continuing_subword_prefix ?? "##",
      maxChars: model.max_input_chars_per_word ?? 100,
      steps: normalizerSteps(spec.normalizer, file),
      prefixIds,
      suffixIds,
      padId: vocab.get(pad) || 0,
      maxLength: config.model_max_length ?? Infinity,
    });
  }

  /**
   * Words and pieces of `text` (no special tokens, no truncation).
   * @param {string} text
   * @returns {DocPieces}
   */
  encode(text) {
    const original = Array.from(text);
    let norm = { chars: original, source: original.map((_, i) => i) };
    for (const step of this.steps) norm = step(norm);
    const covered = new Uint8Array(original.length);
    for (const s of norm.source) covered[s] = 1;
    /** @type {DocPieces} */
    const doc = { ids: [], offsets: [], words: [] };
    for (const group of joinAbbreviations(splitWords(norm.chars), norm.chars)) {
      const firstPiece = doc.ids.length;
      for (const [first, end] of group) {
        for (const [id, a, b] of this.wordPieces(norm.chars.slice(first, end))) {
          doc.ids.push(id);
          doc.offsets.push([norm.source[first + a], norm.source[first + b - 1] + 1]);
        }
      }
      // a word ends after the characters normalization folded into its last one (combining marks, dropped controls)
      let wordEnd = norm.source[group[group.length - 1][1] - 1] + 1;
      while (wordEnd < original.length && !covered[wordEnd] && !WHITESPACE.test(original[wordEnd])) wordEnd++;
      doc.words.push({ start: norm.source[group[0][0]], end: wordEnd, firstPiece, endPiece: doc.ids.length });
    }
    return doc;
  }

  /**
   * WordPiece: greedy longest-match pieces of one word, as `[id, start, end]` in its characters;
   * the whole word is one unknown piece when it is too long or some part matches nothing.
   * @param {string[]} chars
   * @returns {Array<[number, number, number]>}
   */
  wordPieces(chars) {
    const unknown = [[this.unkId, 0, chars.length]];
    if (chars.length > this.maxChars) return /** @type {any} */ (unknown);
    /** @type {Array<[number, number, number]>} */
    const pieces = [];
    for (let start = 0; start < chars.length;) {
      let end = chars.length;
      let id;
      for (; end > start; end--) {
        id = this.vocab.get((start > 0 ? this.prefix : "") + chars.slice(start, end).join(""));
        if (id !== undefined) break;
      }
      if (id === undefined) return /** @type {any} */ (unknown);
      pieces.push([id, start, end]);
      start = end;
    }
    return pieces;
  }
}

/**
 * `BertPreTokenizer`: `[start, end)` ranges of the words of normalized characters, split on
 * whitespace (dropped) and punctuation (one word per mark).
 * @param {string[]} chars
 * @returns {Array<[number, number]>}
 */
function splitWords(chars) {
  /** @type {Array<[number, number]>} */
  const words = [];
  let start = 0;
  chars.forEach((c, i) => {
    const space = WHITESPACE.test(c);
    if (space || PUNCTUATION.test(c)) {
      if (start < i) words.push([start, i]);
      if (!space) words.push([i, i + 1]);
      start = i + 1;
    }
  });
  if (start < chars.length) words.push([start, chars.length]);
  return words;
}

/**
 * The words entities are made of: the pre-tokenizer's splits, except that single letters each
 * followed by a period ("U.S.", "P.", "a.m.") form one word, as spaCy keeps them one token.
 * @param {Array<[number, number]>} splits  ranges of normalized characters, in order
 * @param {string[]} chars  the normalized characters
 * @returns {Array<Array<[number, number]>>}  the splits of each word
 */
function joinAbbreviations(splits, chars) {
  const single = (/** @type {number} */ k, /** @type {RegExp} */ re) =>
    splits[k][1] - splits[k][0] === 1 && re.test(chars[splits[k][0]]);
  const touching = (/** @type {number} */ k) => splits[k][1] === splits[k + 1][0];
  const groups = [];
  for (let i = 0; i < splits.length;) {
    let j = i; // splits [i, j) are letter-period pairs so far
    while (
      j + 1 < splits.length &&
      single(j, LETTER) &&
      single(j + 1, PERIOD) &&
      touching(j) &&
      (j === i || touching(j - 1))
    )
      j += 2;
    const end = Math.max(j, i + 1);
    groups.push(splits.slice(i, end));
    i = end;
  }
  return groups;
}

module.exports = { Tokenizer, joinAbbreviations, normalizerSteps, splitWords };
