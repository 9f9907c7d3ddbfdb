"""Load-test tooling shipped with tickstock (``tickstock bench ...``)."""
