"use strict";
/** Stage 3 — backend: run an exported ONNX graph with onnxruntime-node (Python's `backends/onnx.py`). */

const ort = require("onnxruntime-node");
const { error } = require("./errors");

class OnnxBackend {
  /**
   * @param {import("onnxruntime-node").InferenceSession} session
   * @param {string} file  the graph it runs
   */
  constructor(session, file) {
    this.session = session;
    this.file = file;
  }

  /**
   * A CPU session on the graph `file` (inputs `input_ids`, `attention_mask`; output `logits`).
   * @param {string} file
   * @param {number} [threads]  intra-op threads (default: onnxruntime's)
   */
  static async create(file, threads) {
    /** @type {import("onnxruntime-node").InferenceSession.SessionOptions} */
    const options = { executionProviders: ["cpu"], graphOptimizationLevel: "all" };
    if (threads) options.intraOpNumThreads = threads;
    try {
      return new OnnxBackend(await ort.InferenceSession.create(file, options), file);
    } catch (err) {
      throw error("N003", file, /** @type {Error} */ (err).message);
    }
  }

  /**
   * Logits `(rows, width, nTags)` of one padded batch, row-major.
   * @param {import("./batching").Batch} batch
   * @returns {Promise<{data: Float32Array, nTags: number}>}
   */
  async forward(batch) {
    const dims = [batch.rows, batch.width];
    const { logits } = await this.session.run({
      input_ids: new ort.Tensor("int64", batch.inputIds, dims),
      attention_mask: new ort.Tensor("int64", batch.attentionMask, dims),
    });
    return { data: /** @type {Float32Array} */ (logits.data), nTags: logits.dims[2] };
  }

  async release() {
    await this.session.release();
  }
}

module.exports = { OnnxBackend };
