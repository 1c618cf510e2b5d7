"""jitgrad's performance suite: workloads written once in NumPy, run under jitgrad and its peers.

Entry point: `python bench/run.py` (see bench/README.md).
"""
