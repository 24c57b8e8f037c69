"""Storage adapters. Domain code talks to the `Protocol` classes in `storage.protocols`;
SQL and CQL live only below this package."""
