"""`make soak`: a seeded, bounded fault soak through the real pipeline (README.md#fault-soak)."""
