"""Pure metric math over numpy arrays: no Django, no I/O, no model. Each function states its
contract; the registry entries in ``metrics/definitions/`` wrap them."""
