"""Colorization models: the protocol every model meets, the registry, and the models."""
