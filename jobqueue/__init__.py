"""The queue layer the API and the workers share: settings, the job contract, the Redis connection,
its key names, heartbeats and worker liveness, the one reaper, and the cache of explanations.

`app` and `workers` both import it; it imports neither. Only `jobqueue.wiring` touches torch (it
builds the explanation service); the rest is plain Python, pydantic, redis and rq.
"""
