"""wrk from inside a network namespace, as the benchmarks run it: requests per second."""

from __future__ import annotations

import re
import subprocess


def rate(netns: str, url: str, duration: int, *, threads: int = 2, connections: int = 50,
         headers: tuple[str, ...] = (), errors_fail: bool = True) -> float:
    """Requests per second. Socket errors or non-2xx answers fail the benchmark, or with
    `errors_fail=False` are printed (a relay under new-connection load may reset a few, and a
    busy machine makes a few connections time out)."""
    argv = ["ip", "netns", "exec", netns, "wrk", f"-t{threads}", f"-c{connections}",
            f"-d{duration}s"]
    for header in headers:
        argv += ["-H", header]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"(Socket errors: .*|Non-2xx.*)", out)
    if errors:
        if errors_fail:
            raise SystemExit(f"wrk saw errors:\n{out}")
        print(f"  {url} {' '.join(headers)}: {errors[1]}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise SystemExit(f"no rate in wrk's output:\n{out}")
    return float(found[1])
