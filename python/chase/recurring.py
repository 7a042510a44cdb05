"""A training script's side of ``chase run`` (docs/RECURRING.md), in two lines::

    run = chase.recurring.Run.from_environment()   # run.batch_size: train with it
    if run.report(epoch, accuracy).stop: break     # after each epoch

Pure Python over chase run's local socket (``$CHASE_RUN_SOCKET``, one JSON line each way), the same
protocol ``chase run-report`` and the C++ ``chase::RunClient`` speak; it calls nothing compiled.
Errors: :class:`RunError` (a ``RuntimeError``) with chase run's message — not started by chase run,
a NaN or infinite metric, an epoch reported twice, a report after the run was told to stop.
"""

from __future__ import annotations

import json
import math
import os
import socket
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

__all__ = ["Run", "Verdict", "RunError"]

_TIMEOUT_S = 10.0
_MAX_REPLY_BYTES = 64 * 1024


class RunError(RuntimeError):
    """chase run refused a report, or is not there; ``code`` names the kind ("invalid argument")."""

    def __init__(self, message: str, code: str = "unavailable"):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Verdict:
    stop: bool
    outcome: str  # what the run ends as when it stops: reached, stopped_early or failed
    reason: str


def _environment(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise RunError(
            f"{name} is not set: this process was not started by `chase run` "
            "(run it as chase run --job NAME ... -- CMD)"
        )
    return value


@dataclass(frozen=True)
class Run:
    job: str
    batch_size: int
    run_id: int
    profiling: bool
    power_limit_w: Optional[float]
    socket_path: str

    @classmethod
    def from_environment(cls) -> "Run":
        limit = os.environ.get("CHASE_POWER_LIMIT_W", "")
        return cls(
            job=_environment("CHASE_JOB"),
            batch_size=int(_environment("CHASE_BATCH_SIZE")),
            run_id=int(_environment("CHASE_RUN_ID")),
            profiling=_environment("CHASE_PROFILE") == "1",
            power_limit_w=float(limit) if limit else None,
            socket_path=_environment("CHASE_RUN_SOCKET"),
        )

    def report(
        self,
        epoch: int,
        metric: float,
        energy_j: Optional[float] = None,
        time_s: Optional[float] = None,
    ) -> Verdict:
        """Epoch ``epoch`` (from 1) ended with ``metric``; optionally the script's own energy and
        time so far. Returns whether to stop."""
        if not math.isfinite(metric):
            raise RunError(f"epoch {epoch}: the metric {metric} is not a finite number", "invalid argument")
        request = {"epoch": int(epoch), "metric": float(metric)}
        if energy_j is not None or time_s is not None:
            request.update(energy_j=float(energy_j or 0), time_s=float(time_s or 0))
        reply = self._request(request)
        return Verdict(reply.get("action") == "stop", reply.get("outcome", ""), reply.get("reason", ""))

    def report_profile(self, points: Sequence[Tuple[float, float, float]], max_power_limit_w: float = 0) -> float:
        """A profiling run's (limit W, time s, energy J) per power limit; returns the chosen limit."""
        profile = [{"power_limit_w": p, "time_s": t, "energy_j": e} for p, t, e in points]
        reply = self._request({"profile": profile, "max_power_limit_w": max_power_limit_w})
        return float(reply["power_limit_w"])

    def _request(self, request: dict) -> dict:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(_TIMEOUT_S)
            try:
                s.connect(self.socket_path)
                s.sendall((json.dumps(request) + "\n").encode())
                data = b""
                while b"\n" not in data and len(data) < _MAX_REPLY_BYTES:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except OSError as e:
                raise RunError(f"nothing answers on the run socket {self.socket_path!r} ({e}): has its chase run ended?")
        reply = json.loads(data.split(b"\n", 1)[0] or b"{}")
        if "error" in reply:
            raise RunError(reply["error"], reply.get("code", "internal"))
        return reply
