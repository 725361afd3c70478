"use strict";
/**
 * Run a spacy-distilner model exported to ONNX from Node.js.
 *
 *     const { load } = require("distilner-runtime");
 *     const ner = await load("/path/to/exported-model");
 *     const [record] = await ner.annotate(["Angela Merkel visited Paris."]);
 *     // record.entities: [{start, end, label, text, confidence}, ...]
 *     await ner.close();
 *
 * The data path mirrors the Python package, one module each: tokenize → windows → batching →
 * backend → align (first-piece pooling) → decode → annotate. Entities are spans of the BERT
 * pre-tokenizer's words (whitespace and punctuation split them), where Python uses spaCy's tokens.
 */

const { DECODINGS } = require("./src/decode");
const { entities } = require("./src/annotate");
const { CAPS_VIEW, CAPS_VIEWS } = require("./src/casing");
const { Engine, MAX_BATCH_TOKENS } = require("./src/engine");
const { DistilnerError, error } = require("./src/errors");
const { ONNX_FILES, PRECISIONS, readModelDir } = require("./src/modeldir");

/**
 * @typedef {object} LoadOptions
 * @property {string} [precision]  which stored graph: "fp32", "int8" or "fp16" (default: fp32, or the only graph
 *   the directory holds)
 * @property {string} [onnx]  an ONNX file to run instead of the stored graph of `precision`
 * @property {number} [threads]  onnxruntime intra-op threads (default: onnxruntime's)
 * @property {"viterbi" | "greedy"} [decoding]  the most probable valid tag sequence (default), or each word's argmax
 * @property {number} [threshold]  entities with a lower confidence are dropped (default 0)
 * @property {number} [maxBatchTokens]  padded positions per forward pass (default 8192)
 * @property {import("./src/casing").CapsView} [capsView]  how the model reads runs of 3 or more ALL-CAPS words
 *   in a line: "title" (default, as in Python), "lower", or "as-given"; offsets are the text's either way
 */

/** @typedef {{text: string, entities: import("./src/annotate").Entity[]}} Annotation */

class Ner {
  /**
   * @param {Engine} engine
   * @param {"viterbi" | "greedy"} decoding
   * @param {number} threshold
   */
  constructor(engine, decoding, threshold) {
    this.engine = engine;
    this.decoding = decoding;
    this.threshold = threshold;
  }

  /** Entity labels the model predicts. */
  get labels() {
    return this.engine.tagset.entityLabels;
  }

  /**
   * Entities of each text, batched together (texts are padded within a batch, under the token budget).
   * @param {string[]} texts
   * @returns {Promise<Annotation[]>}
   */
  async annotate(texts) {
    texts.forEach((t, i) => {
      if (typeof t !== "string")
        throw error("N004", `text ${i}`, `expected a string, got ${t === null ? "null" : typeof t}`);
    });
    const scores = await this.engine.wordScores(texts);
    const { tagset } = this.engine;
    return texts.map((text, i) => ({
      text,
      entities: entities(text, scores[i], tagset, this.decoding, this.threshold),
    }));
  }

  /** Release the onnxruntime session. */
  async close() {
    await this.engine.backend.release();
  }
}

/**
 * Load the exported model in `dir` (see `python -m spacy_distilner export-onnx`).
 * @param {string} dir
 * @param {LoadOptions} [options]
 * @returns {Promise<Ner>}
 */
async function load(dir, options = {}) {
  const { precision, onnx, threads, decoding = "viterbi", threshold = 0, maxBatchTokens = MAX_BATCH_TOKENS } = options;
  const { capsView = CAPS_VIEW } = options;
  if (!DECODINGS.includes(decoding)) throw error("D009", "decoding", decoding, DECODINGS);
  if (!CAPS_VIEWS.includes(capsView)) throw error("D009", "caps_view", capsView, CAPS_VIEWS);
  if (!(threshold >= 0 && threshold <= 1)) throw error("D013", threshold);
  if (threads !== undefined && !(Number.isInteger(threads) && threads > 0)) throw error("N004", "threads", threads);
  const model = readModelDir(dir, { precision, onnx });
  return new Ner(await Engine.create(model, { threads, maxBatchTokens, capsView }), decoding, threshold);
}

module.exports = { DistilnerError, Ner, ONNX_FILES, PRECISIONS, load };
