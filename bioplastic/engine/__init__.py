"""The trial loop (Trainer) and the backends that run it."""
