"""Curator hint files: schema, validation, and rasterizing hints into model inputs."""
