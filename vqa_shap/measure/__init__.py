"""Benchmarks: the paper's pipeline against ours, estimator and loader speed, and the test games with
known Shapley values they run on. Scripts in ``scripts/bench_*.py`` call these modules.
"""
