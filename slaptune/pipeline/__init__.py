"""End-to-end jobs behind the CLI: prepare data and model, train, evaluate, report."""
