"""Recurrent sequences (d'Ascoli et al. 2022): the ``recurrence`` task."""
