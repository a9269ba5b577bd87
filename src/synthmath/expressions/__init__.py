"""The symbolic-expression engine shared by the symbolic task families (specs/expressions.md):
operator tables and presets, uniform random trees, prefix tokens, the SymPy bridge, numeric
evaluation, equivalence and timeout-safe workers."""
