"""The compare service: HTTP API, workspaces, async jobs and callbacks, metrics, the command line."""
