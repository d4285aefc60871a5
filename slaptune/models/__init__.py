"""Model presets (built from a config, nothing downloaded), offline tokenizers, llama2.c import."""
