"""The engine's version, recorded with every volume it makes (bump it when results change)."""

__version__ = "1.1.0"
