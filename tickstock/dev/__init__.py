"""Development tooling: the local stack, demo data and the demo producer.

The served app never imports this package; the ``tickstock`` command and the tests do.
"""
