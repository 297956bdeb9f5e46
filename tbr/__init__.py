"""tbr: follow-up reviews for changes that reached production without an approver."""

__version__ = "0.1.0"
