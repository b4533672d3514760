"""Command-line entry points (thin: compose the config, call the library, write results).
The config directory and its resolvers are ``unmask.config``."""

import unmask.config  # noqa: F401  (registers the config resolvers)
