"""Shared test support: harnesses and helpers that test modules import, and fixture plugins.

- ``env``: the repository root, ``free_port``, the environment of a ``tickstock`` child process.
- ``stores``: the PostgreSQL and Redis a test session runs against.
- ``served``: a real hypercorn server in the test process (``ServedApp``).
- ``auth``: account, token and session fixtures (a pytest plugin); ``post_login``,
  ``new_api_token``.
- ``realtime``: a recording Socket.IO client, Redis publishers, producer messages, a private
  redis-server.
- ``processes``: child processes and private servers: hypercorn nodes, a PostgreSQL cluster, a
  Redis Sentinel setup (their fixtures: a pytest plugin).
"""
