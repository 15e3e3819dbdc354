"""Benchmark harness and report (make bench)."""
