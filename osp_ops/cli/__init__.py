"""The osp-ops command line (typer), one module per command group."""
