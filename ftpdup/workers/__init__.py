"""The long-running workers: one sprinkler per lane, one carrier per subscriber target."""
