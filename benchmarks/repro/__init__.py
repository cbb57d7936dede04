"""Paper reproductions: one module per seed method, run by ``benchmarks/reproductions.py``."""
