"""Speed and accuracy measurements (not the VQA benchmark datasets, not the paper's masking benchmark):
the paper's pipeline against ours, estimator error per compute, loader speed, and the test games with
known Shapley values they run on. Scripts in ``scripts/bench_*.py`` call these modules.
"""
