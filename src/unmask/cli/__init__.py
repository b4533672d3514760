"""Command-line entry points (thin: compose the config, call the library, write results)."""
