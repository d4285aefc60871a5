"""Framework glue. Import the submodule you need (``hf``, ``trl``, ``pytorch``); this package
imports nothing by itself."""
