"""Shared parts of the keystore benchmarks: the synthetic cell, fresh measuring processes, sros2, output.

Every figure is measured in a fresh Python process (``measure``): the parent never imports the code
under test, so that start-up, peak memory and page cache state do not leak from one run into the
next, and runs of our code and of sros2 can be interleaved.  ``--code DIR`` measures another
checkout of cobot_security (e.g. ``git archive main`` unpacked) for before/after figures.

sros2 (0.13, ``ros2/sros2``) is not installable from the registries here; pass ``--sros2 DIR``
pointing at a source checkout (the repository or its ``sros2`` package folder) or make
``sros2.keystore`` importable.  Its keystore API needs rclpy (installed from the ROS 2 wheels)
and an ament index entry, which :func:`sros2_environment` builds in a temporary prefix.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SIZES = (10, 50, 200, 1000)

#: Run in a measuring process before sros2 is imported: sros2 0.13 passes the curve *class* to
#: ``ec.generate_private_key``, which current cryptography (50.x) refuses; give it the instance.
SROS2_SHIM = """
from cryptography.hazmat.primitives.asymmetric import ec as _ec
_generate = _ec.generate_private_key
_ec.generate_private_key = lambda curve, backend=None: _generate(curve() if isinstance(curve, type) else curve)
"""


def synthetic_policy_yaml(count: int, prefix: str = "/bench/node_") -> str:
    """A cell of ``count`` nodes, each publishing two topics, subscribing its neighbour's, serving one service."""
    lines = ["version: 1", f"name: bench_{count}", "domain_ids: [0]", "enclaves:"]
    for i in range(count):
        lines += [f"  {prefix}{i}:", f"    node: node_{i}", "    namespace: /bench", "    topics:",
                  f"      publish: [topic_{i}, ~/status]", f"      subscribe: [topic_{(i + 1) % count}]",
                  "    services:", "      serve: [~/configure]"]
    return "\n".join(lines) + "\n"


def measure(script: Path, arguments: Sequence[str], env: dict[str, str], timeout_s: float = 1800) -> dict[str, float]:
    """Run ``script --child ARGUMENTS`` in a fresh process; return the JSON figures it prints last."""
    result = subprocess.run([sys.executable, str(script), "--child", *arguments], env=env, capture_output=True,
                            text=True, timeout=timeout_s, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{script.name} {' '.join(arguments)} failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.splitlines()[-1]))


def timed(operation: Callable[[], object]) -> dict[str, float]:
    """Wall and CPU seconds (this process and its reaped workers) of ``operation``, and peak RSS."""
    before = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    start = time.perf_counter()
    operation()
    wall = time.perf_counter() - start
    after = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu = sum(a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime for a, b in zip(after, before))
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mib": after[0].ru_maxrss / 1024,
            "workers_peak_rss_mib": after[1].ru_maxrss / 1024}


def compile_sources(directory: Path) -> None:
    """Write the bytecode of every module under ``directory``, as an installed package has it.

    Without it, a measuring process started with ``PYTHONDONTWRITEBYTECODE`` (set on this machine)
    compiles every module it imports, every time: ~115 ms of each CLI start that no user pays.
    """
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(directory)], check=True, timeout=600,
                   capture_output=True)


def ours_environment(code: Path) -> dict[str, str]:
    """The environment of a measuring process that imports cobot_security from ``code`` (compiled)."""
    compile_sources(code / "cobot_security")
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(code), os.environ.get("PYTHONPATH")) if p))


def _sros2_package(source: Path) -> Path | None:
    for candidate in (source / "sros2", source):
        if (candidate / "sros2" / "keystore" / "__init__.py").is_file():
            return candidate
    return None


def sros2_environment(source: Path | None, prefix_dir: Path) -> dict[str, str] | None:
    """The environment that imports sros2 from ``source`` (or as installed), or None if it does not import."""
    env = dict(os.environ)
    if source is not None:
        package = _sros2_package(source)
        if package is None:
            return None
        index = prefix_dir / "share" / "ament_index" / "resource_index" / "packages"
        index.mkdir(parents=True, exist_ok=True)
        (index / "sros2").touch()
        if (package / "xml_cache").is_dir():
            shutil.copytree(package / "xml_cache", prefix_dir / "share" / "sros2" / "xml_cache", dirs_exist_ok=True)
        compile_sources(package / "sros2")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(package), env.get("PYTHONPATH")) if p)
        env["AMENT_PREFIX_PATH"] = os.pathsep.join(p for p in (str(prefix_dir), env.get("AMENT_PREFIX_PATH")) if p)
    probe = subprocess.run([sys.executable, "-c", SROS2_SHIM + "import sros2.keystore"], env=env,
                           capture_output=True, timeout=120, check=False)
    return env if probe.returncode == 0 else None


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    try:
        import cryptography  # noqa: PLC0415  (only for its version)
        crypto = cryptography.__version__
    except ImportError:
        crypto = "absent"
    return {"date": dt.date.today().isoformat(), "cpu": model, "cores": str(len(os.sched_getaffinity(0))),
            "python": platform.python_version(), "cryptography": crypto, "kernel": platform.release(),
            "load_average_1min": f"{os.getloadavg()[0]:.2f}"}


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median and minimum."""
    return {"median": statistics.median(values), "min": min(values)}


def emit(title: str, rows: list[dict[str, object]], columns: Sequence[tuple[str, str, str]], as_json: bool,
         notes: Sequence[str] = ()) -> None:
    """Print ``rows`` as a table (columns: key, heading, format) or, with ``as_json``, as one JSON document."""
    if as_json:
        print(json.dumps({"benchmark": title, "machine": machine(), "rows": rows, "notes": list(notes)}, indent=1))
        return
    print(f"# {title}  ({machine()['cpu']}, {machine()['cores']} cores, load {machine()['load_average_1min']})")
    print("  ".join(f"{heading:>{max(len(heading), 8)}}" for _, heading, _ in columns))
    for row in rows:
        cells = []
        for key, heading, fmt in columns:
            value = row.get(key)
            text = "-" if value is None else (format(value, fmt) if isinstance(value, (int, float)) else str(value))
            cells.append(f"{text:>{max(len(heading), 8)}}")
        print("  ".join(cells))
    for note in notes:
        print(f"note: {note}")


def temporary_directory() -> tempfile.TemporaryDirectory[str]:
    """A scratch directory (``$COBOT_BENCH_DIR``, else the system's; here /tmp is the ext4 root disk)."""
    return tempfile.TemporaryDirectory(prefix="cobot-bench-", dir=os.environ.get("COBOT_BENCH_DIR"))
