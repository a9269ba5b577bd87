"""Study reports: tables, figures and results/README.md from the evaluation JSONs."""
