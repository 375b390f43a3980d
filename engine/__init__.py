"""Inference: backends, the face pipeline stages and their composition."""
