"""otterbench: measure Otter's inserted-parameter inference intervention against separate models."""

__version__ = "0.1.0"
