"""Tiny random models of the real transformers classes, built offline, for tests and speed measurements.
"""
