"""Training-data preparation: corpus converters for spaCy."""
