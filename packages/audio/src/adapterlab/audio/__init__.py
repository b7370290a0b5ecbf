"""adapterlab.audio."""
