"use strict";
/**
 * Stage 4a — align and pool: piece logits -> word logits and calibrated probabilities
 * (Python's `align.py` with `pooling = "first"`).
 *
 * A word's pieces are known from the tokenizer, so the alignment is exact: a word takes the
 * logits of its first piece, and its probabilities are `softmax(logits / temperature)`.
 */

/**
 * @param {import("./tokenize").DocPieces} doc
 * @param {Float32Array} pieceLogits  `(pieces, nTags)` row-major, for every piece of `doc`
 * @param {number} nTags
 * @param {number} temperature
 * @returns {{logits: import("./decode").Matrix, probs: import("./decode").Matrix}}
 */
function poolFirst(doc, pieceLogits, nTags, temperature) {
  const n = doc.words.length;
  const logits = new Float32Array(n * nTags);
  const probs = new Float32Array(n * nTags); // float32, as in Python
  doc.words.forEach((word, w) => {
    const row = pieceLogits.subarray(word.firstPiece * nTags, (word.firstPiece + 1) * nTags);
    logits.set(row, w * nTags);
    const scaled = Array.from(row, (v) => v / temperature);
    const max = Math.max(...scaled);
    const exp = scaled.map((v) => Math.exp(v - max));
    const sum = exp.reduce((a, b) => a + b, 0);
    exp.forEach((e, t) => (probs[w * nTags + t] = e / sum));
  });
  return { logits: { data: logits, n, width: nTags }, probs: { data: probs, n, width: nTags } };
}

module.exports = { poolFirst };
