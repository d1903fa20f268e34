"""Konvrt: a self-hostable media-processing API."""

__version__ = "0.1.0"
