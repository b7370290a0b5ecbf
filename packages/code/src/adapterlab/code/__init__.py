"""adapterlab.code."""
