"""Micro-benchmarks outside a run: insert.py times base, split and fused forwards side by side (`bench-insert`)."""
