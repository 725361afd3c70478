"""spacy-distilner: fast DistilBERT token-classification NER as a spaCy component."""

from .component import DistilNER, make_distilner
from .hf_api import pipeline

__all__ = ["DistilNER", "make_distilner", "pipeline"]
__version__ = "0.1.0"
