"""Rules for numpy.linalg."""
