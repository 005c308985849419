"""modsent: modular multilingual sentence encoders (language specialization + cross-lingual alignment)."""

__version__ = "0.1.0"
