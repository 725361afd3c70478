"use strict";
/**
 * Stage 5 — annotate: decoded words -> entity records (Python's `annotate.py` and the
 * entities of `entity_record.doc_to_json`).
 */

const { decode, spanConfidence, tagPath } = require("./decode");

/**
 * An entity: characters `[start, end)` of the text (code points, as Python counts them).
 * @typedef {{start: number, end: number, label: string, text: string, confidence: number}} Entity
 */

/**
 * Whether an entity is kept at `threshold`: its confidence is at least the threshold.
 * @param {number} confidence
 * @param {number} threshold
 */
function passes(confidence, threshold) {
  return confidence >= threshold;
}

/**
 * The entities of one text: tags per word, spans of words, their confidence, the threshold.
 * @param {string} text
 * @param {import("./engine").WordScores} scores
 * @param {import("./decode").TagSet} tagset
 * @param {"viterbi" | "greedy"} decoding
 * @param {number} threshold
 * @returns {Entity[]}
 */
function entities(text, scores, tagset, decoding, threshold) {
  const chars = Array.from(text);
  const { words } = scores.pieces;
  const tagIds = tagPath(scores.logits, tagset, decoding);
  /** @type {Entity[]} */
  const out = [];
  for (const [first, last, label] of decode(tagIds, tagset)) {
    const confidence = spanConfidence(scores.probs, tagIds, first, last);
    if (!passes(confidence, threshold)) continue;
    const start = words[first].start;
    const end = words[last - 1].end;
    out.push({ start, end, label, text: chars.slice(start, end).join(""), confidence });
  }
  return out;
}

module.exports = { entities, passes };
