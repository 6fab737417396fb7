"""The userspace proxy's data plane: relay worker processes (worker.py) and the pool that
starts and feeds them (pool.py)."""
