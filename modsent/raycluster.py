"""Which Ray a job runs on, and the session around it: shared by translation and mining.

:func:`ray_session` joins the session already started in this process, a cluster
(``RayConfig.address`` or ``RAY_ADDRESS``), or starts a bounded local Ray on loopback.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

__all__ = ["RayConfig", "ray_session"]


@dataclass
class RayConfig:
    """Which Ray to use: an existing cluster (``address`` or ``RAY_ADDRESS``), else a local one.

    A session already started in this process (``ray.init`` before the job) is used as it is.
    """

    address: Optional[str] = None
    runtime_env: dict[str, Any] = field(default_factory=dict)
    num_cpus: Optional[int] = None  # local Ray only; None: all cores
    object_store_memory_mb: int = 512  # local Ray only
    temp_dir: Path = Path("/tmp/modsent-ray")  # local Ray only; short, since Ray's socket paths are limited
    progress_bars: bool = True


@contextlib.contextmanager
def ray_session(config: RayConfig) -> Iterator[None]:
    """Use the Ray session already started in this process, a cluster, or a bounded local Ray.

    A cluster comes from ``config.address`` or ``RAY_ADDRESS`` (``ray job submit`` sets it); the
    local Ray listens on loopback only, without dashboard, with ``num_cpus`` and object store
    bounded. Only a session started here is shut down here.
    """
    import ray

    if ray.is_initialized():
        yield
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    runtime_env = dict(config.runtime_env)
    address = config.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, runtime_env=runtime_env or None)
    else:
        package_root = Path(__file__).resolve().parents[1]
        if "site-packages" not in package_root.parts and Path.cwd().resolve() != package_root:
            # A source checkout run from elsewhere: local workers must import modsent from it too.
            env_vars = dict(runtime_env.get("env_vars", {}))
            env_vars["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(package_root), env_vars.get("PYTHONPATH", os.environ.get("PYTHONPATH"))]))
            runtime_env["env_vars"] = env_vars
        config.temp_dir.mkdir(parents=True, exist_ok=True)
        ray.init(num_cpus=config.num_cpus, object_store_memory=config.object_store_memory_mb << 20,
                 include_dashboard=False, _node_ip_address="127.0.0.1", _temp_dir=str(config.temp_dir),
                 runtime_env=runtime_env or None)
    try:
        yield
    finally:
        ray.shutdown()
