"""The secure-workcell demo: the example cell as real processes, a scripted scenario, a live table."""
