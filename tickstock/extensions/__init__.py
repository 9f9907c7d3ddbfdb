"""Resources owned by the app: each has ``init_app`` and an accessor over ``current_app``."""
