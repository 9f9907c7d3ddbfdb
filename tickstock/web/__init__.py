"""The dashboard's templates, own static files and front-end package management."""
