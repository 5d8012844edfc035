"""The adaptive optimizer: a Gaussian-process model that re-orders pending experiments."""
