"""The restoration pipeline: reading and writing scans, colour spaces, colorization, saturation."""
