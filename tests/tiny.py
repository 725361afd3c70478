"""Tiny random-weight token classifiers and tokenizers, built locally (no hub)."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Sequence

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from spacy_distilner.settings import import_transformers

import_transformers()  # first, as the package imports it: without TensorFlow unless $USE_TF says otherwise
from transformers import DistilBertConfig, DistilBertForTokenClassification, DistilBertTokenizerFast  # noqa: E402

IOB2 = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
BILOU = ("O",) + tuple(f"{p}-{lab}" for lab in ("PER", "ORG", "LOC", "MISC") for p in "BILU")
#: Sample texts for the component's tests: entities to find, an empty text, punctuation.
TEXTS = [
    "John Smith went to New York with Apple in the United States today.",
    "Mary said the company in London was new.",
    "",
    "Paris, Germany and the world: people of the year!",
]

WORDS = (
    "the a of to and in is was for on with as by at from new york london paris john smith mary "
    "apple google united states germany president said today company city people world year "
    "'s n't . , - ( ) \" ' : ; ! ?"
).split()


def write_vocab(path: Path, words: Sequence[str] = WORDS) -> Path:
    """A WordPiece vocab: specials, single characters, ``##`` characters and some words."""
    chars = string.ascii_letters + string.digits + string.punctuation + "éèàüöäçñßåøæ"
    entries = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    entries += list(chars) + [f"##{c}" for c in chars] + [w for w in words if w not in chars]
    path.write_text("\n".join(dict.fromkeys(entries)) + "\n", encoding="utf8")
    return path


def make_tokenizer(vocab: Path, lowercase: bool, max_length: int) -> DistilBertTokenizerFast:
    """A BERT WordPiece fast tokenizer over ``vocab``, built with ``tokenizers`` (transformers 5 reads
    no ``vocab_file`` argument: its tokenizer would hold the five special tokens only)."""
    ids = {w: i for i, w in enumerate(vocab.read_text(encoding="utf8").splitlines())}
    tok = Tokenizer(models.WordPiece(ids, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.post_processor = processors.BertProcessing(("[SEP]", ids["[SEP]"]), ("[CLS]", ids["[CLS]"]))
    return DistilBertTokenizerFast(tokenizer_object=tok, do_lower_case=lowercase, model_max_length=max_length)


def make_tiny_model(
    out_dir: Path,
    tags: Sequence[str] = IOB2,
    seed: int = 0,
    max_position_embeddings: int = 64,
    lowercase: bool = True,
) -> Path:
    """Save a random 2-layer DistilBertForTokenClassification and its fast tokenizer."""
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = write_vocab(out_dir / "vocab.txt")
    tokenizer = make_tokenizer(vocab, lowercase, max_position_embeddings)
    torch.manual_seed(seed)
    config = DistilBertConfig(
        vocab_size=len(tokenizer),
        dim=32,
        hidden_dim=64,
        n_layers=2,
        n_heads=2,
        max_position_embeddings=max_position_embeddings,
        id2label=dict(enumerate(tags)),
        label2id={t: i for i, t in enumerate(tags)},
    )
    model = DistilBertForTokenClassification(config)
    with torch.no_grad():  # spread the logits so argmax tags vary along a text
        model.classifier.weight.mul_(20.0)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    return out_dir


def make_tiny_encoder(out_dir: Path, seed: int = 0) -> Path:
    """A random 2-layer DistilBertModel (no head) and its tokenizer, like a converted encoder."""
    from transformers import DistilBertModel

    make_tiny_model(out_dir, IOB2, seed=seed, max_position_embeddings=128)
    DistilBertModel.from_pretrained(str(out_dir)).save_pretrained(str(out_dir), safe_serialization=True)
    return out_dir


PEOPLE = ("John Smith", "Mary", "John")
PLACES = ("London", "Paris", "New York", "Germany")
ORGS = ("Apple", "Google")


def training_docs(nlp, n: int = 40) -> list:
    """Simple sentences with PER / LOC / ORG entities, one Doc each."""
    from spacy.tokens import Span

    docs = []
    for i in range(n):
        person, place, org = PEOPLE[i % 3], PLACES[i % 4], ORGS[i % 2]
        text = f"{person} said the company {org} is in {place} ."
        doc = nlp.make_doc(text)
        ents = []
        for value, label in ((person, "PER"), (org, "ORG"), (place, "LOC")):
            start = text.index(value)
            ents.append(doc.char_span(start, start + len(value), label=label))
        doc.set_ents([Span(doc, e.start, e.end, e.label_) for e in ents], default="outside")
        docs.append(doc)
    return docs
