"""spacy-distilner: fast DistilBERT token-classification NER as a spaCy component."""

from .component import DistilNER, make_distilner

__all__ = ["DistilNER", "make_distilner"]
__version__ = "0.1.0"
