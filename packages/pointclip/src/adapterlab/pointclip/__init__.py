"""adapterlab.pointclip."""
