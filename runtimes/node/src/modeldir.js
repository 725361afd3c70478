"use strict";
/**
 * The files of an exported model directory (`python -m spacy_distilner export-onnx MODEL OUT_DIR`):
 * `config.json` (the tags in `id2label`, `max_position_embeddings`), `tokenizer.json` (and
 * `tokenizer_config.json`), `distilner.json` (temperature and window; optional, as in Python)
 * and the ONNX graphs `model.onnx`, `model_int8.onnx`, `model_fp16.onnx`.
 */

const fs = require("node:fs");
const path = require("node:path");
const { TagSet } = require("./decode");
const { error } = require("./errors");
const { Tokenizer } = require("./tokenize");

/** File name of each ONNX variant inside a model directory (Python's `backends.onnx.ONNX_FILES`). */
const ONNX_FILES = { fp32: "model.onnx", int8: "model_int8.onnx", fp16: "model_fp16.onnx" };
const PRECISIONS = Object.keys(ONNX_FILES);

/**
 * What inference needs from a model directory.
 * @typedef {object} ModelFiles
 * @property {TagSet} tagset
 * @property {Tokenizer} tokenizer
 * @property {number} temperature  softmax temperature of the probabilities (calibration)
 * @property {number} maxLength  window length in pieces, special tokens included
 * @property {number | null} stride  overlap between windows (null: a quarter window)
 * @property {string} onnx  path of the ONNX graph to run
 */

/**
 * The stored graph to run when no precision is given: fp32 where the directory holds it, else the only
 * graph it holds (fp32, and so a missing-file error, when it holds none).
 * @param {string} dir
 * @returns {string}
 */
function defaultPrecision(dir) {
  const stored = PRECISIONS.filter((p) =>
    fs.existsSync(path.join(dir, ONNX_FILES[/** @type {keyof typeof ONNX_FILES} */ (p)])),
  );
  if (stored.length > 1 && !stored.includes("fp32")) throw error("N005", dir, stored);
  return stored.length === 1 ? stored[0] : "fp32";
}

/**
 * The JSON object in `file`; undefined when it is absent and not `required`.
 * @param {string} file
 * @param {boolean} required
 * @returns {any}
 */
function readJson(file, required) {
  if (!fs.existsSync(file)) {
    if (required) throw error("N001", file);
    return undefined;
  }
  let data;
  try {
    data = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw error("D022", file, `not valid JSON (${/** @type {Error} */ (err).message})`);
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw error(
      "D022",
      file,
      `expected a JSON object, got ${data === null ? "null" : Array.isArray(data) ? "an array" : typeof data}`,
    );
  }
  return data;
}

/**
 * Read the model directory `dir`.
 * @param {string} dir
 * @param {{precision?: string, onnx?: string}} [choice]  which graph: a file, or a stored precision (default:
 *   fp32, or the only graph the directory holds)
 * @returns {ModelFiles}
 */
function readModelDir(dir, { precision, onnx } = {}) {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw error("D001", dir);
  if (precision !== undefined && !PRECISIONS.includes(precision)) {
    throw error("D009", "precision", precision, PRECISIONS);
  }
  const configFile = path.join(dir, "config.json");
  const config = readJson(configFile, true);
  if (!config.id2label || typeof config.id2label !== "object") throw error("D022", configFile, "no id2label");
  const tokenizerFile = path.join(dir, "tokenizer.json");
  const tokenizer = Tokenizer.fromSpec(
    readJson(tokenizerFile, true),
    readJson(path.join(dir, "tokenizer_config.json"), false) ?? {},
    tokenizerFile,
  );
  const stored = readJson(path.join(dir, "distilner.json"), false) ?? {};
  const maxLength = Number(
    stored.max_length || Math.min(config.max_position_embeddings ?? Infinity, tokenizer.maxLength),
  );
  if (!Number.isFinite(maxLength)) throw error("D022", configFile, "no max_position_embeddings");
  const graph =
    onnx ?? path.join(dir, ONNX_FILES[/** @type {keyof typeof ONNX_FILES} */ (precision ?? defaultPrecision(dir))]);
  if (!fs.existsSync(graph)) throw error("N001", graph);
  return {
    tagset: TagSet.fromId2label(config.id2label),
    tokenizer,
    temperature: Number(stored.temperature ?? 1.0),
    maxLength,
    stride: stored.stride ?? null,
    onnx: graph,
  };
}

module.exports = { ONNX_FILES, PRECISIONS, readJson, readModelDir };
