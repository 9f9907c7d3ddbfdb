"""Real-time path: Redis ingest, normalisation, per-symbol history, fan-out and Socket.IO."""
