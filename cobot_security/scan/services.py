"""Controller service exposure scan: scan the ports of the targets, then judge what answered.

Composes :mod:`~cobot_security.scan.scanner` with a judgement: the conduit comparison of
:mod:`~cobot_security.scan.exposure` when a network file is given, :func:`judge_exposure`
otherwise.  Targets are checked by the caller (:func:`cobot_security.scan.targets.check_targets`).
IEC 62443-3-3 SR 7.7 (least functionality), SR 5.1/5.2.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from cobot_security.errors import InputError
from cobot_security.network.model import NetworkPolicy
from cobot_security.scan.catalog import ServiceCatalog
from cobot_security.scan.exposure import compare_with_conduits
from cobot_security.scan.judgement import judge_exposure
from cobot_security.scan.scanner import ScanLimits, scan_ports
from cobot_security.status import Finding

__all__ = ["scan_services"]


def scan_services(
    hosts: Sequence[str], ports: Sequence[int], catalog: ServiceCatalog, limits: ScanLimits,
    network: NetworkPolicy | None = None,
) -> list[Finding]:
    """Scan ``ports`` of ``hosts`` within ``limits`` and judge the result (targets checked by the caller).

    With ``network``, each host's results are compared with the exposure its conduits allow
    (:func:`cobot_security.scan.exposure.compare_with_conduits`); without, :func:`judge_exposure`.

    :raises InputError: for limits outside their caps or a port outside 1-65535.
    """
    limits.validate()
    for port in ports:
        if not 1 <= port <= 65535:
            raise InputError(None, "--ports", "ports 1-65535", str(port))
    results = asyncio.run(scan_ports(list(hosts), list(ports), limits))
    if network is None:
        return judge_exposure(results, catalog)
    findings: list[Finding] = []
    for host in dict.fromkeys(r.host for r in results):
        findings += compare_with_conduits(network, host, [r for r in results if r.host == host], catalog,
                                          scanned_ports=ports)
    return findings
