"""Built-in metric definitions: one module per family, each calling ``registry.register``."""
