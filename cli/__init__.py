"""The `wanedit` command: try, watch, fetch, cancel, redrive and account for edits."""
