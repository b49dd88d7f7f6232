"""Test sets in and out of OpenBench (SPEC §14): one module per foreign format, each turning a file into
records of our own test fields, and the import service that validates and creates them in chunks."""
