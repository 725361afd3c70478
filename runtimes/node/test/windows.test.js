"use strict";
// Windows and batches, against values computed by the Python package (windows.make_windows, batching.plan_batches).

const test = require("node:test");
const assert = require("node:assert/strict");
const { makeWindows } = require("../src/windows");
const { buildBatches, planBatches } = require("../src/batching");

const spans = (/** @type {any[]} */ ws) => ws.map((w) => [w.start, w.end, w.keepStart, w.keepEnd]);

test("windows equal Python's", () => {
  assert.deepEqual(spans(makeWindows(0, 300, 254, 64)), [
    [0, 182, 0, 150],
    [118, 300, 150, 300],
  ]);
  assert.deepEqual(spans(makeWindows(0, 10, 8, 2)), [
    [0, 6, 0, 5],
    [4, 10, 5, 10],
  ]);
  assert.deepEqual(spans(makeWindows(0, 62, 62, 15)), [[0, 62, 0, 62]]);
  assert.deepEqual(spans(makeWindows(0, 63, 62, 15)), [
    [0, 39, 0, 31],
    [24, 63, 31, 63],
  ]);
  assert.deepEqual(spans(makeWindows(0, 17, 6, 5)).slice(-2), [
    [10, 16, 12, 13],
    [11, 17, 13, 17],
  ]);
  assert.deepEqual(makeWindows(3, 0, 8, 2), []);
});

test("every piece is owned by exactly one window; windows keep the overlap", () => {
  for (const [n, size, stride] of [
    [1000, 62, 15],
    [513, 254, 64],
    [41, 10, 0],
    [100, 7, 6],
  ]) {
    const windows = makeWindows(0, n, size, stride);
    const owners = new Uint8Array(n);
    windows.forEach((w, k) => {
      assert.ok(w.end - w.start <= size && w.start <= w.keepStart && w.keepEnd <= w.end);
      for (let p = w.keepStart; p < w.keepEnd; p++) owners[p] += 1;
      if (k > 0) assert.ok(windows[k - 1].end - w.start >= stride);
    });
    assert.ok(
      owners.every((c) => c === 1),
      `${n}/${size}/${stride}`,
    );
  }
});

test("bad window settings are refused (D007)", () => {
  assert.throws(() => makeWindows(0, 10, 8, 8), /\[D007\]/);
  assert.throws(() => makeWindows(0, 10, 0, 0), /\[D007\]/);
});

test("batches stay under the token budget and the padding limit", () => {
  assert.deepEqual(planBatches([10, 30, 20, 30, 29], 100), [[1, 3, 4], [2], [0]]);
  assert.deepEqual(planBatches([5, 5, 5, 5], 10), [
    [0, 1],
    [2, 3],
  ]);
});

test("batch rows hold the special tokens, the window's pieces and padding", () => {
  const range = (/** @type {number} */ n, /** @type {number} */ from) => Array.from({ length: n }, (_, i) => from + i);
  const pieces = [
    { ids: range(7, 10), offsets: [], words: [] },
    { ids: range(20, 30), offsets: [], words: [] },
  ];
  const windows = [...makeWindows(0, 7, 4, 1), ...makeWindows(1, 20, 30, 1)];
  assert.deepEqual(spans(windows), [
    [0, 4, 0, 3],
    [3, 7, 3, 7],
    [0, 20, 0, 20],
  ]);
  const [long, short] = buildBatches(pieces, windows, [101], [102], 0, 64);
  assert.deepEqual([long.rows, long.width, short.rows, short.width], [1, 22, 2, 6]);
  assert.deepEqual(Array.from(short.inputIds, Number), [101, 10, 11, 12, 13, 102, 101, 13, 14, 15, 16, 102]);
  assert.deepEqual(short.owned, [
    { doc: 0, start: 0, end: 3, rowStart: 1 },
    { doc: 0, start: 3, end: 7, rowStart: 1 },
  ]);
  const near = [pieces[1], { ids: range(19, 50), offsets: [], words: [] }];
  const [padded] = buildBatches(
    near,
    near.map((p, i) => makeWindows(i, p.ids.length, 30, 1)).flat(),
    [101],
    [102],
    0,
    64,
  );
  assert.equal(padded.rows, 2); // one padded position of 44: under 5 %
  assert.deepEqual(Array.from(padded.attentionMask.subarray(22), Number), [...Array(21).fill(1), 0]);
  assert.deepEqual(Array.from(padded.inputIds.subarray(40), Number), [67, 68, 102, 0]);
});
