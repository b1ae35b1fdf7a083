"""Use cases: read through ports, decide in the pure core, write through ports."""
