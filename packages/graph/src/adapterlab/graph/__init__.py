"""adapterlab.graph."""
