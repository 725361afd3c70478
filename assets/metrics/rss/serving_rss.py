"""Peak RSS of a serving process: load the default model with one backend, annotate 200 CoNLL-2003 valid
sentences, print ru_maxrss (MB). Usage: python serving_rss.py torch_fp32|torch_bf16|onnx_int8|onnx_fp32|tensorflow
(NO_TRF=1: without spacy-transformers' spaCy entry points, which import transformers into every pipeline)."""
import json, os, resource, sys, time
from pathlib import Path
if os.environ.get("NO_TRF"):  # measure without spacy-transformers' entry points (which import transformers at spacy.blank)
    import catalogue
    from importlib.metadata import SelectableGroups
    catalogue.AVAILABLE_ENTRY_POINTS = SelectableGroups(
        {g: [e for e in eps if not e.value.startswith("spacy_transformers")] for g, eps in catalogue.AVAILABLE_ENTRY_POINTS.items()})
import spacy

variant = sys.argv[1]
model = sys.argv[2] if len(sys.argv) > 2 else "default"
config = {"torch_fp32": {"backend": "torch", "precision": "fp32"}, "torch_bf16": {"backend": "torch", "precision": "bf16"},
          "onnx_int8": {"backend": "onnx", "precision": "int8"}, "onnx_fp32": {"backend": "onnx", "precision": "fp32"},
          "tensorflow": {"backend": "tensorflow", "precision": "fp32"}}[variant]
data = os.environ.get("DISTILNER_DATA", str(Path(__file__).resolve().parents[4] / "shared" / "data"))
sent, texts = [], []
for line in open(Path(data) / "conll2003" / "valid.txt"):
    parts = line.split()
    if not parts or parts[0] == "-DOCSTART-":
        if sent:
            texts.append(" ".join(sent)); sent = []
        if len(texts) >= 200:
            break
        continue
    sent.append(parts[0])
nlp = spacy.blank("en")
start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
nlp.add_pipe("distilner", config={"model": model, "num_threads": 1, **config})
t = time.perf_counter()
docs = list(nlp.pipe(texts))
ents = sum(len(d.ents) for d in docs)
print(json.dumps({"variant": variant, "start_mb": round(start_rss), "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "ents": ents, "texts": len(texts), "s": round(time.perf_counter() - t, 1),
                  "info": {k: v for k, v in nlp.get_pipe("distilner").backend_info.items() if k in ("backend", "precision", "device")}}))
