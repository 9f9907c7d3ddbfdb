"""The Redis leases by which one node does a job for the cluster (the alert matcher, ingest).

A lease is a key holding the holder's node id with an expiry; the holder renews it, the others try
to take it, and it lapses when its holder dies or loses Redis.
"""

from __future__ import annotations

# Take the lease when it is free, or keep it when this node holds it already (after a failure
# that ended its work, the lease it still holds is taken up again, not waited out).
# KEYS: the lease; ARGV: node id, milliseconds.
ACQUIRE_SCRIPT = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
# Give the lease up, only if this node holds it. KEYS: the lease; ARGV: node id.
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
