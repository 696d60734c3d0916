"""airseal: a Sigstore-compatible, offline-first code-signing toolkit."""

__version__ = "0.1.0"
