"""synthmath: transformers learn mathematics from generated data."""

__version__ = "0.1.0"
