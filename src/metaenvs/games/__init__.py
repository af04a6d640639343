"""Environment families, one module set each."""
