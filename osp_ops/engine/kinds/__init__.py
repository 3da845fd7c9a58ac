"""Operation kinds: one module per kind family, loaded by the kind registry."""
