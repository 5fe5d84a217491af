"""UK GDPR: the retention schedule and its job, erasure of a person by anonymisation, and
subject access exports (JSON and photos in a .zip)."""
