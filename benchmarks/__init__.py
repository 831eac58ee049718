"""Benchmark scripts (run as files; importable as a package by the tests)."""
