"""wanedit: bucket-triggered video editing with Wan 2.7 (the shared layer package)."""
