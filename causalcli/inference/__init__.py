"""Inference shared by every design: estimates with their named uncertainty, distributions,
the wild cluster bootstrap and Abadie-Imbens standard errors."""
