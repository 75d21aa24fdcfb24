"""Scan I/O: what a file is (probe), its pixels (read), results with provenance (write, rows),
finding and hashing files, and file names as people see them. Light to import: no torch."""
