"use strict";
/** Stage 2b — batching: length-sorted batches under a padded-token budget (Python's `batching.py`). */

/**
 * Padded model inputs for some windows; `owned[r]` says which pieces of which text row `r` gives.
 * @typedef {{
 *   rows: number,
 *   width: number,
 *   inputIds: BigInt64Array,
 *   attentionMask: BigInt64Array,
 *   owned: Array<{doc: number, start: number, end: number, rowStart: number}>
 * }} Batch
 */

/** A batch is closed before its padding would pass this share of its positions. */
const MAX_BATCH_PADDING = 0.05;

/**
 * Group sequence indices, longest first, so that `rows × longest` stays within `maxBatchTokens`
 * and no batch pads more than `maxPadding` of its positions.
 * @param {number[]} lengths
 * @param {number} maxBatchTokens
 * @param {number} [maxPadding]
 * @returns {number[][]}
 */
function planBatches(lengths, maxBatchTokens, maxPadding = MAX_BATCH_PADDING) {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b] - lengths[a] || a - b); // stable, as Python's sort
  /** @type {number[][]} */
  const batches = [];
  /** @type {number[]} */
  let current = [];
  let real = 0;
  for (const i of order) {
    if (current.length) {
      const positions = (current.length + 1) * lengths[current[0]];
      if (positions > maxBatchTokens || positions - real - lengths[i] > maxPadding * positions) {
        batches.push(current);
        current = [];
        real = 0;
      }
    }
    current.push(i);
    real += lengths[i];
  }
  if (current.length) batches.push(current);
  return batches;
}

/**
 * Pad each planned batch only to its own longest window; special tokens are added here.
 * @param {import("./tokenize").DocPieces[]} pieces
 * @param {import("./windows").Window[]} windows
 * @param {number[]} prefix  special-token ids before the pieces
 * @param {number[]} suffix  and after them
 * @param {number} padId
 * @param {number} maxBatchTokens
 * @returns {Batch[]}
 */
function buildBatches(pieces, windows, prefix, suffix, padId, maxBatchTokens) {
  const lengths = windows.map((w) => w.end - w.start + prefix.length + suffix.length);
  return planBatches(lengths, maxBatchTokens).map((rows) => {
    const width = lengths[rows[0]];
    const inputIds = new BigInt64Array(rows.length * width).fill(BigInt(padId));
    const attentionMask = new BigInt64Array(rows.length * width);
    const owned = rows.map((i, r) => {
      const w = windows[i];
      const seq = [...prefix, ...pieces[w.doc].ids.slice(w.start, w.end), ...suffix];
      seq.forEach((id, j) => {
        inputIds[r * width + j] = BigInt(id);
        attentionMask[r * width + j] = 1n;
      });
      return { doc: w.doc, start: w.keepStart, end: w.keepEnd, rowStart: prefix.length + w.keepStart - w.start };
    });
    return { rows: rows.length, width, inputIds, attentionMask, owned };
  });
}

module.exports = { MAX_BATCH_PADDING, buildBatches, planBatches };
