"""The seed's walkthrough in ipvs mode on a real kernel: run inside the test VM by
tests/e2e/test_seed_walkthrough.py when the machine's own kernel has no IPVS.

    python tests/vm/seed_walkthrough.py RESULT.json

Starts `kubesvc up --proxy-mode ipvs` as the e2e tests start a cluster (kubesvc.testing's
Cluster: an isolated node, no DNS upstream), replays the walkthrough with the real kubectl and
writes what the host checks to RESULT.json:

    {"steps": [{"command": str, "output": str}], "error": str | null,
     "timeline": ["<seconds>s $ <command>"], "diagnostics": str}

`timeline` says when each step finished, counted from the start of `kubesvc up`;
`diagnostics` (the node's addresses and routes, ipvs mode's rules and IPVS's connections) is
only gathered when a step failed. The cluster's log is copied beside RESULT.json.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kubesvc.testing import Cluster
from kubesvc.walkthrough import Walkthrough

# Python runs ~20x slower under emulation: `kubesvc up` takes ~40 s to be ready, not 2.
START_TIMEOUT = 300.0
STOP_TIMEOUT = 120.0


def diagnostics(netns: str) -> str:
    """What the node's network looked like when a step failed."""
    # Imported only then: the proxy's modules take seconds to import under emulation.
    from kubesvc.proxy.ipvs import programmed_rules

    parts = []
    for argv in (["ip", "-n", netns, "addr"], ["ip", "-n", netns, "route"],
                 ["ip", "netns", "exec", netns, "cat", "/proc/net/ip_vs_conn"]):
        done = subprocess.run(argv, capture_output=True, text=True)
        parts.append(f"$ {' '.join(argv)}\n{done.stdout}{done.stderr}")
    parts.append(asyncio.run(programmed_rules(netns)))
    return "\n".join(parts)


def main(result_path: Path) -> None:
    result: dict[str, Any] = {"steps": [], "error": None, "timeline": [], "diagnostics": ""}
    with tempfile.TemporaryDirectory(prefix="kubesvc-") as state:
        cluster = Cluster(Path(state) / "state", extra_args=["--proxy-mode", "ipvs"],
                          start_timeout=START_TIMEOUT)
        start = time.monotonic()

        def mark(line: str) -> None:
            if line.startswith("$ "):  # the first line each step echoes, once it is done
                result["timeline"].append(f"{time.monotonic() - start:.1f}s {line}")

        tour = Walkthrough(cluster.kubeconfig, echo=mark)
        up = False
        try:
            cluster.start()
            up = True
            mark("$ kubesvc up")
            tour.run(cluster.state_dir)
        except Exception:  # reported to the host, which fails the test with it
            result["error"] = traceback.format_exc()
            if up:
                result["diagnostics"] = diagnostics(f"ksvc-{cluster.name}")
        finally:
            result["steps"] = [asdict(step) for step in tour.steps]
            try:
                cluster.stop(STOP_TIMEOUT)
                mark("$ kubesvc down")
            finally:  # even if it would not stop (the job's exit code says so)
                result_path.write_text(json.dumps(result, indent=1))
                if cluster.log_path.exists():
                    shutil.copyfile(cluster.log_path, result_path.with_name("kubesvc.log"))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
