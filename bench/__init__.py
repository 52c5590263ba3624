"""Benchmarks run by `make bench`: each module in this package with a ``main()`` runs in turn."""
