"use strict";
/**
 * The inference path of one model: caps view → tokenize → windows → batches → backend → align/pool
 * (Python's `engine.py`). `wordScores(texts)` gives per-word logits and calibrated probabilities.
 */

const { poolFirst } = require("./align");
const { OnnxBackend } = require("./backend");
const { buildBatches } = require("./batching");
const { CAPS_VIEW, capsView } = require("./casing");
const { error } = require("./errors");
const { checkWindow, makeWindows } = require("./windows");

/** Python's default `max_batch_tokens`: padded positions (rows × longest row) per forward pass. */
const MAX_BATCH_TOKENS = 8192;

/**
 * Per-word scores of one text.
 * @typedef {object} WordScores
 * @property {import("./tokenize").DocPieces} pieces
 * @property {import("./decode").Matrix} logits  `(words, tags)`
 * @property {import("./decode").Matrix} probs  `(words, tags)`, softmax of logits / temperature
 */

class Engine {
  /**
   * @param {import("./modeldir").ModelFiles} model
   * @param {OnnxBackend} backend
   * @param {number} maxBatchTokens
   * @param {import("./casing").CapsView} capsView  how the model reads runs of ALL-CAPS words
   */
  constructor(model, backend, maxBatchTokens, capsView) {
    const { tokenizer } = model;
    this.tokenizer = tokenizer;
    this.tagset = model.tagset;
    this.temperature = model.temperature;
    this.backend = backend;
    this.maxLength = model.maxLength;
    this.window = model.maxLength - tokenizer.prefixIds.length - tokenizer.suffixIds.length;
    this.stride = model.stride === null ? Math.floor(this.window / 4) : Number(model.stride);
    checkWindow(this.window, this.stride);
    if (!(maxBatchTokens >= this.maxLength)) throw error("D008", maxBatchTokens, this.maxLength);
    this.maxBatchTokens = maxBatchTokens;
    this.capsView = capsView;
  }

  /**
   * The engine of a read model directory, with an onnxruntime session on its graph.
   * @param {import("./modeldir").ModelFiles} model
   * @param {{threads?: number, maxBatchTokens?: number, capsView?: import("./casing").CapsView}} [options]
   */
  static async create(model, { threads, maxBatchTokens = MAX_BATCH_TOKENS, capsView = CAPS_VIEW } = {}) {
    return new Engine(model, await OnnxBackend.create(model.onnx, threads), maxBatchTokens, capsView);
  }

  /**
   * Piece logits per text: windows → batches → backend → each piece from the window that owns it.
   * @param {import("./tokenize").DocPieces[]} pieces
   * @returns {Promise<Float32Array[]>}  `(pieces, tags)` row-major per text
   */
  async pieceLogits(pieces) {
    const nTags = this.tagset.tags.length;
    const out = pieces.map((p) => new Float32Array(p.ids.length * nTags));
    const windows = pieces.flatMap((p, i) => makeWindows(i, p.ids.length, this.window, this.stride));
    const { prefixIds, suffixIds, padId } = this.tokenizer;
    for (const batch of buildBatches(pieces, windows, prefixIds, suffixIds, padId, this.maxBatchTokens)) {
      const { data, nTags: rows } = await this.backend.forward(batch);
      if (rows !== nTags) throw error("D004", nTags, rows, this.backend.file);
      batch.owned.forEach(({ doc, start, end, rowStart }, r) => {
        const from = (r * batch.width + rowStart) * nTags;
        out[doc].set(data.subarray(from, from + (end - start) * nTags), start * nTags);
      });
    }
    return out;
  }

  /**
   * Per-word calibrated scores of each text, read in its caps view (offsets index the text).
   * @param {string[]} texts
   * @returns {Promise<WordScores[]>}
   */
  async wordScores(texts) {
    const pieces = texts.map((t) => this.tokenizer.encode(capsView(t, this.capsView)));
    const logits = await this.pieceLogits(pieces);
    const nTags = this.tagset.tags.length;
    return pieces.map((p, i) => ({ pieces: p, ...poolFirst(p, logits[i], nTags, this.temperature) }));
  }
}

module.exports = { Engine, MAX_BATCH_TOKENS };
