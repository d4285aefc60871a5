"""Reading, checking and tokenising instruction data; the built-in demo data."""
