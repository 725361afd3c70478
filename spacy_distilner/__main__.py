"""``python -m spacy_distilner``: the ``distilner`` command line."""

from .cli import app

if __name__ == "__main__":  # not when re-imported by multiprocessing workers
    app()
