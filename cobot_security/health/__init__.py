"""Health probes: pure functions from files, environment and graph facts to Findings."""
