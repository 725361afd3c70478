"use strict";
/**
 * Stage 2a — windows: split a long piece sequence into overlapping windows (Python's `windows.py`).
 *
 * A window covers at most `size` pieces; consecutive windows overlap by at least `stride`
 * pieces. A long text gets the fewest windows that satisfy both, all of one length and evenly
 * spread. Each piece is *owned* by exactly one window — the one where it sits closest to the
 * centre — so no piece is dropped or counted twice.
 */

const { error } = require("./errors");

/**
 * Pieces `[start, end)` of text `doc`; the window owns pieces `[keepStart, keepEnd)`.
 * @typedef {{doc: number, start: number, end: number, keepStart: number, keepEnd: number}} Window
 */

/**
 * Reject window settings that could not cover a text.
 * @param {number} size
 * @param {number} stride
 */
function checkWindow(size, stride) {
  if (!Number.isInteger(size) || !Number.isInteger(stride) || size < 1 || stride < 0 || stride >= size) {
    throw error("D007", stride, size);
  }
}

/**
 * Window count, length and step: fewest windows, then the shortest length that keeps the overlap.
 * @param {number} nPieces
 * @param {number} size
 * @param {number} stride
 * @returns {[number, number, number]}
 */
function balanced(nPieces, size, stride) {
  const count = Math.ceil((nPieces - stride) / (size - stride));
  let length = Math.ceil((nPieces + (count - 1) * stride) / count);
  while (Math.ceil((nPieces - length) / (count - 1)) > length - stride) length += 1; // integer steps: a few rounds
  return [count, length, Math.ceil((nPieces - length) / (count - 1))];
}

/**
 * Windows over `nPieces` pieces; one window when the text fits, none when it is empty.
 * @param {number} doc
 * @param {number} nPieces
 * @param {number} size
 * @param {number} stride
 * @returns {Window[]}
 */
function makeWindows(doc, nPieces, size, stride) {
  checkWindow(size, stride);
  if (nPieces === 0) return [];
  if (nPieces <= size) return [{ doc, start: 0, end: nPieces, keepStart: 0, keepEnd: nPieces }];
  const [count, length, step] = balanced(nPieces, size, stride);
  const starts = Array.from({ length: count }, (_, k) => Math.min(k * step, nPieces - length));
  /** @type {Window[]} */
  const windows = [];
  starts.forEach((start, k) => {
    const end = start + length;
    const keepStart = k === 0 ? 0 : windows[k - 1].keepEnd;
    const keepEnd = k === count - 1 ? nPieces : Math.floor((starts[k + 1] + end) / 2); // middle of the overlap
    windows.push({ doc, start, end, keepStart, keepEnd });
  });
  return windows;
}

module.exports = { balanced, checkWindow, makeWindows };
