#!/bin/bash
# Peak RSS of `distilner serve` (ONNX int8): run it twice (the first run exports the graph into the cache). Usage: serve_rss.sh PYTHON
# start distilner serve (ONNX int8), post 200 CoNLL valid sentences in 20 requests, print the server's VmHWM
PY=$1
$PY -m spacy_distilner serve --model default --backend onnx --precision int8 --port 8765 > /tmp/serve_out.log 2>&1 &
PID=$!
for i in $(seq 1 180); do curl -s localhost:8765/health > /dev/null && break; sleep 1; done
$PY - <<'PY'
import json, os, urllib.request
sents, sent = [], []
for line in open(os.environ.get("DISTILNER_DATA", "../shared/data") + "/conll2003/valid.txt"):
    p = line.split()
    if not p or p[0] == "-DOCSTART-":
        if sent: sents.append(" ".join(sent)); sent = []
        if len(sents) >= 200: break
        continue
    sent.append(p[0])
n = 0
for i in range(0, 200, 10):
    req = urllib.request.Request("http://127.0.0.1:8765/ner", data=json.dumps({"texts": sents[i:i+10]}).encode(), headers={"content-type": "application/json"})
    n += sum(len(r["entities"]) for r in json.load(urllib.request.urlopen(req))["results"])
print("entities", n)
PY
grep VmHWM /proc/$PID/status
kill $PID; wait $PID 2>/dev/null
