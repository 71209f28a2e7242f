"""The functions ``benchmarks.accuracy`` times with pyperf and with the pipeline.

Each is a ``module:function`` user task: ``function(payload: bytes, params: dict)``
returning a small JSON-serialisable value. Standard library only, so that a pipeline
worker and a pyperf worker import the same code. Every module-level object (the 1 MiB
buffer, the bodies' start state) is built at import, which both tools do before timing.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

BUFFER_BYTES = 1024 * 1024
BUFFER = bytes(range(256)) * (BUFFER_BYTES // 256)

# Sun, Jupiter, Saturn, Uranus, Neptune: position, velocity (AU, AU/day scaled), mass.
_PI = 3.14159265358979323
_SOLAR_MASS = 4 * _PI * _PI
_DAYS_PER_YEAR = 365.24
_BODIES = (
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), _SOLAR_MASS),
    (
        (4.84143144246472090e00, -1.16032004402742839e00, -1.03622044471123109e-01),
        (1.66007664274403694e-03, 7.69901118419740425e-03, -6.90460016972063023e-05),
        9.54791938424326609e-04 * _SOLAR_MASS,
    ),
    (
        (8.34336671824457987e00, 4.12479856412430479e00, -4.03523417114321381e-01),
        (-2.76742510726862411e-03, 4.99852801234917238e-03, 2.30417297573763929e-05),
        2.85885980666130812e-04 * _SOLAR_MASS,
    ),
    (
        (1.28943695621391310e01, -1.51111514016986312e01, -2.23307578892655734e-01),
        (2.96460137564761618e-03, 2.37847173959480950e-03, -2.96589568540237556e-05),
        4.36624404335156298e-05 * _SOLAR_MASS,
    ),
    (
        (1.53796971148509165e01, -2.59193146099879641e01, 1.79258772950371181e-01),
        (2.68067772490389322e-03, 1.62824170038242295e-03, -9.51592254519715870e-05),
        5.15138902046611451e-05 * _SOLAR_MASS,
    ),
)


def cpu_nbody(payload: bytes, params: dict[str, Any]) -> float:
    """Pure-Python CPU work that holds the GIL: ``steps`` steps of the five-body
    simulation (the benchmarks game's n-body); returns the sum of the x positions."""
    positions = [list(position) for position, _, _ in _BODIES]
    velocities = [[v * _DAYS_PER_YEAR for v in velocity] for _, velocity, _ in _BODIES]
    masses = [mass for _, _, mass in _BODIES]
    pairs = [(i, j) for i in range(len(masses)) for j in range(i + 1, len(masses))]
    dt = 0.01
    for _ in range(int(params.get("steps", 2500))):
        for i, j in pairs:
            (x1, y1, z1), (x2, y2, z2) = positions[i], positions[j]
            dx, dy, dz = x1 - x2, y1 - y2, z1 - z2
            magnitude = dt * (dx * dx + dy * dy + dz * dz) ** -1.5
            b1, b2 = masses[i] * magnitude, masses[j] * magnitude
            v1, v2 = velocities[i], velocities[j]
            v1[0] -= dx * b2
            v1[1] -= dy * b2
            v1[2] -= dz * b2
            v2[0] += dx * b1
            v2[1] += dy * b1
            v2[2] += dz * b1
        for position, velocity in zip(positions, velocities, strict=True):
            position[0] += dt * velocity[0]
            position[1] += dt * velocity[1]
            position[2] += dt * velocity[2]
    return sum(position[0] for position in positions) + len(payload) * 0.0


def cpu_sha256(payload: bytes, params: dict[str, Any]) -> str:
    """CPU work in C that releases the GIL: SHA-256 over the payload, then ``rounds``
    passes over a 1 MiB buffer; returns the hex digest."""
    digest = hashlib.sha256(payload)
    for _ in range(int(params.get("rounds", 25))):
        digest.update(BUFFER)
    return digest.hexdigest()


def sleep(payload: bytes, params: dict[str, Any]) -> int:
    """No CPU at all: ``time.sleep(seconds)``; returns the payload's length."""
    time.sleep(float(params.get("seconds", 0.02)))
    return len(payload)
