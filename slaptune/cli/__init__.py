"""The ``slaptune`` command line (thin: parse, then call the library)."""
