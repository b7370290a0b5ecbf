"""adapterlab.core."""
