"use strict";
/**
 * Stage 4b — decode: per-word tag scores -> entity spans (Python's `decode.py`).
 *
 * Tags come from the model's `id2label`: `O` and `<prefix>-<label>` with prefix B/I (IOB2),
 * B/I/L/U (BILOU) or B/I/E/S (IOBES). Repair rules: `B`/`U`/`S` start an entity; `I`/`L`/`E`
 * continue an open entity of the same label, else start one; `L`/`U`/`E`/`S` close it after the
 * word, `O` before it. `tagPath` picks the tags: each word's argmax (`greedy`), or the most
 * probable sequence that needs no repair (`viterbi`), computed only when the argmax path is invalid.
 */

const { error } = require("./errors");

const BEGIN = new Set("BUS");
const INSIDE = new Set("ILE");
const END = new Set("LUES");
const OPEN = new Set("BI"); // in BILOU/IOBES an entity is still open after these
const DECODINGS = ["viterbi", "greedy"];

/**
 * Scores of `n` rows × `width` columns, row-major.
 * @typedef {{data: Float32Array | Float64Array, n: number, width: number}} Matrix
 */

class TagSet {
  /**
   * @param {string[]} tags  tag names by id
   * @param {string[]} prefixes  "O", "B", "I", ... by id
   * @param {string[]} labels  entity label by id ("" for O)
   */
  constructor(tags, prefixes, labels) {
    this.tags = tags;
    this.prefixes = prefixes;
    this.labels = labels;
    this.oIndex = tags.indexOf("O");
    this.transitions = makeTransitions(prefixes, labels);
  }

  /**
   * The tag set of a model config's `id2label` (keys are ids as strings).
   * @param {Record<string, string>} id2label
   */
  static fromId2label(id2label) {
    const tags = Array.from({ length: Object.keys(id2label).length }, (_, i) => id2label[String(i)]);
    const prefixes = [];
    const labels = [];
    for (const tag of tags) {
      if (tag === "O") {
        prefixes.push("O");
        labels.push("");
        continue;
      }
      const cut = typeof tag === "string" ? tag.indexOf("-") : -1;
      const prefix = cut < 0 ? tag : tag.slice(0, cut);
      if (cut < 0 || cut === tag.length - 1 || !(BEGIN.has(prefix) || INSIDE.has(prefix))) throw error("D005", tag);
      prefixes.push(prefix);
      labels.push(tag.slice(cut + 1));
    }
    if (!tags.includes("O")) throw error("D006", tags);
    return new TagSet(tags, prefixes, labels);
  }

  /** Entity labels in first-seen tag order. */
  get entityLabels() {
    return [...new Set(this.labels.filter(Boolean))];
  }
}

/**
 * Which tag may follow which (`allowed[prev * n + cur]`), start a text, or end it: BILOU/IOBES
 * rules when any L/U/E/S tag exists, else IOB2.
 * @param {string[]} prefixes
 * @param {string[]} labels
 */
function makeTransitions(prefixes, labels) {
  const n = prefixes.length;
  const closed = prefixes.some((p) => END.has(p));
  const allowed = new Uint8Array(n * n).fill(1);
  for (let prev = 0; prev < n; prev++) {
    for (let cur = 0; cur < n; cur++) {
      const cp = prefixes[cur];
      const same = labels[prev] === labels[cur];
      if (closed && OPEN.has(prefixes[prev])) allowed[prev * n + cur] = Number(INSIDE.has(cp) && same);
      else if (INSIDE.has(cp)) allowed[prev * n + cur] = Number(!closed && OPEN.has(prefixes[prev]) && same);
    }
  }
  const start = prefixes.map((p) => !INSIDE.has(p));
  const end = prefixes.map((p) => !(closed && OPEN.has(p)));
  return { allowed, start, end, n };
}

/**
 * Entity spans `[start, end, label]` in word indices, following the repair rules.
 * @param {ArrayLike<number>} tagIds
 * @param {TagSet} tagset
 * @returns {Array<[number, number, string]>}
 */
function decode(tagIds, tagset) {
  /** @type {Array<[number, number, string]>} */
  const spans = [];
  let start = -1;
  let label = "";
  for (let i = 0; i < tagIds.length; i++) {
    const prefix = tagset.prefixes[tagIds[i]];
    const lab = tagset.labels[tagIds[i]];
    if (prefix === "O") {
      if (start >= 0) spans.push([start, i, label]);
      start = -1;
      continue;
    }
    if (BEGIN.has(prefix) || start < 0 || lab !== label) {
      if (start >= 0) spans.push([start, i, label]);
      start = i;
      label = lab;
    }
    if (END.has(prefix)) {
      spans.push([start, i + 1, label]);
      start = -1;
    }
  }
  if (start >= 0) spans.push([start, tagIds.length, label]);
  return spans;
}

/**
 * Log-softmax of each row.
 * @param {Matrix} m
 * @returns {Matrix}
 */
function logSoftmax({ data, n, width }) {
  const out = new Float64Array(n * width);
  for (let r = 0; r < n; r++) {
    const row = data.subarray(r * width, (r + 1) * width);
    const max = Math.max(...row);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    const log = Math.log(sum);
    row.forEach((v, j) => (out[r * width + j] = v - max - log));
  }
  return { data: out, n, width };
}

/**
 * Index of the first largest value of `values[from, from + count)`, minus `from`.
 * @param {ArrayLike<number>} values
 * @param {number} from
 * @param {number} count
 */
function argmax(values, from, count) {
  let best = 0;
  for (let j = 1; j < count; j++) if (values[from + j] > values[from + best]) best = j;
  return best;
}

/**
 * Whether a tag path needs no repair.
 * @param {ArrayLike<number>} path
 * @param {ReturnType<typeof makeTransitions>} rules
 */
function isValid(path, rules) {
  if (path.length === 0) return true;
  if (!rules.start[path[0]] || !rules.end[path[path.length - 1]]) return false;
  for (let i = 1; i < path.length; i++) if (!rules.allowed[path[i - 1] * rules.n + path[i]]) return false;
  return true;
}

/**
 * The path of highest total score that `rules` allow.
 * @param {Matrix} scores  per-word log-probabilities
 * @param {ReturnType<typeof makeTransitions>} rules
 * @returns {Int32Array}
 */
function viterbi({ data, n, width }, rules) {
  const back = new Int32Array(n * width);
  let best = Float64Array.from({ length: width }, (_, t) => (rules.start[t] ? data[t] : -Infinity));
  for (let i = 1; i < n; i++) {
    const next = new Float64Array(width);
    for (let cur = 0; cur < width; cur++) {
      let arg = 0;
      let top = -Infinity;
      for (let prev = 0; prev < width; prev++) {
        const cand = rules.allowed[prev * width + cur] ? best[prev] : -Infinity;
        if (cand > top) {
          top = cand;
          arg = prev;
        }
      }
      back[i * width + cur] = arg;
      next[cur] = top + data[i * width + cur];
    }
    best = next;
  }
  const path = new Int32Array(n);
  path[n - 1] = argmax(
    best.map((v, t) => (rules.end[t] ? v : -Infinity)),
    0,
    width,
  );
  for (let i = n - 1; i > 0; i--) path[i - 1] = back[i * width + path[i]];
  return path;
}

/**
 * Tag ids per word from its logits.
 * @param {Matrix} logits
 * @param {TagSet} tagset
 * @param {"viterbi" | "greedy"} decoding
 * @returns {Int32Array}
 */
function tagPath(logits, tagset, decoding) {
  const scores = logSoftmax(logits);
  const greedy = Int32Array.from({ length: scores.n }, (_, r) => argmax(scores.data, r * scores.width, scores.width));
  if (decoding === "greedy" || isValid(greedy, tagset.transitions)) return greedy;
  return viterbi(scores, tagset.transitions);
}

/**
 * Entity confidence: the mean over its words of the probability of each word's tag (a float32, as in Python).
 * @param {Matrix} probs
 * @param {ArrayLike<number>} tagIds
 * @param {number} start
 * @param {number} end
 */
function spanConfidence(probs, tagIds, start, end) {
  let sum = 0;
  for (let i = start; i < end; i++) sum += probs.data[i * probs.width + tagIds[i]];
  return Math.fround(sum / (end - start));
}

module.exports = { DECODINGS, TagSet, decode, isValid, logSoftmax, spanConfidence, tagPath, viterbi };
