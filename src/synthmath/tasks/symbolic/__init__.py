"""Symbolic integration and differential equations (Lample & Charton 2019)."""
