"use strict";
/**
 * Errors with stable codes, written "[CODE] message" like the Python package's `Errors`.
 *
 * A condition the Python package also reports keeps its Python code (D001, D004–D009, D013, D022);
 * conditions only this runtime meets have N codes.
 */

class DistilnerError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   */
  constructor(code, message) {
    super(`[${code}] ${message}`);
    this.name = "DistilnerError";
    this.code = code;
  }
}

/** @type {Record<string, (...args: any[]) => string>} */
const MESSAGES = {
  D001: (path) => `Model directory '${path}' does not exist or is not a directory.`,
  D004: (nTags, rows, file) =>
    `The model's id2label (${nTags} tags) does not match its classification head (${rows} rows) in '${file}'.`,
  D005: (tag) => `Invalid tag '${tag}' in the model's id2label: tags must be 'O' or '<B|I|L|U|E|S>-<label>'.`,
  D006: (tags) => `The model's id2label has no 'O' tag: ${JSON.stringify(tags)}.`,
  D007: (stride, window) => `stride (${stride}) must be >= 0 and smaller than the usable window (${window} pieces).`,
  D008: (value, maxLength) => `max_batch_tokens (${value}) must be at least max_length (${maxLength}).`,
  D009: (what, value, options) => `Unknown ${what} '${value}'; choose one of: ${options.join(", ")}.`,
  D013: (value) => `threshold must be in [0, 1], got ${value}.`,
  D022: (file, problem) => `Model file '${file}' is corrupt: ${problem}.`,
  N001: (file) =>
    `Model file '${file}' is missing: export the model with \`python -m spacy_distilner export-onnx MODEL OUT_DIR\`.`,
  N002: (file, what) =>
    `The tokenizer in '${file}' is not supported here: ${what} (this runtime reads BERT WordPiece tokenizers).`,
  N003: (file, err) => `Could not load the ONNX graph '${file}': ${err}`,
  N004: (what, value) => `Invalid ${what}: ${value}.`,
  N005: (dir, precisions) =>
    `Model directory '${dir}' holds several ONNX graphs but no fp32 one (${precisions.join(", ")}): ` +
    "choose one with precision.",
  // a bad input line of the CLI (Python's `records` gives the same reasons, without codes)
  N010: () => "invalid UTF-8",
  N011: (reason) => `invalid JSON (${reason})`,
  N012: (type) => `expected a JSON object, got ${type}`,
  N013: (field) => `no string field '${field}'`,
  N014: (field) => `field '${field}' holds a lone surrogate (not valid Unicode)`,
  N015: (length, max) =>
    `text of ${length.toLocaleString("en")} characters is over the limit (${max.toLocaleString("en")})`,
};

/**
 * The coded error `code` with its message.
 * @param {keyof typeof MESSAGES} code
 * @param {...any} args  the message's fields
 * @returns {DistilnerError}
 */
function error(code, ...args) {
  return new DistilnerError(code, MESSAGES[code](...args));
}

module.exports = { DistilnerError, error };
