"""Network scans of the cell: OPC UA endpoint audit, controller service exposure, stored results.

``scan.opcua`` pulls in asyncua and is imported explicitly; this package re-exports the stdlib-only
parts.
"""

from __future__ import annotations

from cobot_security.scan.results import ScanRecord, read_scan_results, store_scan_result

__all__ = ["ScanRecord", "read_scan_results", "store_scan_result"]
