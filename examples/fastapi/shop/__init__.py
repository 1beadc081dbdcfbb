"""The tutorial's product service, cached with nearcache (see README.md)."""
