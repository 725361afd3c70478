"""Parity with ``transformers.pipeline("token-classification", aggregation_strategy="first")`` on the same weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import spacy
from transformers import pipeline as hf_pipeline

# Words separated by spaces, punctuation split off: spaCy and the HF pipeline see the same words.
TEXTS = [
    "John Smith went to New York with Apple in the United States today .",
    "Mary said the company in London was new , and Google said Paris .",
    "the president of Germany said : people of the world are new",
    "Smithsonian Appleby went to Yorkshire for Londonderry",  # several pieces per word
]


@pytest.mark.parametrize("seed", [0, 3])
def test_entities_and_scores_match_hf_pipeline(tmp_path: Path, seed: int) -> None:
    from tiny import IOB2, make_tiny_model

    model_dir = make_tiny_model(tmp_path / "m", IOB2, seed=seed, max_position_embeddings=128)
    nlp = spacy.blank("en")
    # the HF pipeline takes each token's argmax: compare with greedy decoding
    pipe = nlp.add_pipe("distilner", config={"model": str(model_dir), "decoding": "greedy"})
    hf = hf_pipeline(
        "token-classification",
        model=pipe.hf_model,
        tokenizer=pipe.hf_tokenizer,
        aggregation_strategy="first",
        device="cpu",
    )
    compared = 0
    for text in TEXTS:
        ours = [(e.start_char, e.end_char, e.label_, e._.confidence) for e in nlp(text).ents]
        theirs = [(int(g["start"]), int(g["end"]), g["entity_group"], float(g["score"])) for g in hf(text)]
        assert [o[:3] for o in ours] == [t[:3] for t in theirs], text
        for o, t in zip(ours, theirs):
            assert o[3] == pytest.approx(t[3], abs=1e-5)
        compared += len(ours)
    assert compared > 5
