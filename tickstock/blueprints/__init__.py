"""HTTP areas, one blueprint per module; ``create_app`` registers each by name."""
