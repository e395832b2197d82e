"""Reference implementation of two AWS Step Functions patterns that exit a Parallel state early."""

__version__ = "0.1.0"
