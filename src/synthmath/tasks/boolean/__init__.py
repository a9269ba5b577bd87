"""Boolean formulas from truth tables (Boolformer, d'Ascoli et al. 2023; specs/boolean.md)."""
