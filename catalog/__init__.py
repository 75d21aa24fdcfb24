"""The archive.db catalog: tables, ingest, queries and export."""
