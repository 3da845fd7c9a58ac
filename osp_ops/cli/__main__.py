"""`python -m osp_ops.cli` runs the CLI (tests use it to run the real command)."""

from osp_ops.cli.main import main

main()
