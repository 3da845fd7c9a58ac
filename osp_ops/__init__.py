"""osp-ops: provisions, configures, upgrades and backs up one participation instance per municipality."""

__version__ = "0.1.0"
