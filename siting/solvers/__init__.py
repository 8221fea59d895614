"""Solver plumbing under the location models: the HiGHS wrapper and the heuristics (greedy, swaps, Lagrangian)."""
