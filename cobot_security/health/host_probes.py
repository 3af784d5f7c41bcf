"""HOST_ASSIGNMENT: a host's keystore holds its own enclaves, all of them, and no CA key.

Which host a keystore belongs to comes from its integrity manifest (a host keystore's is signed by
the authority and names the host; the integrity probe checks the signature) or, for a keystore
without one, from the reporter's configured host when the policy names it.  On a *member* host:

* a CA private key in ``private/`` is an ERROR (subject ``ca``): it gives the host the power to
  mint any identity (IEC 62443-4-2 CR 1.5);
* an enclave directory of an enclave not assigned to the host is an ERROR (its key is here);
* an enclave assigned to the host but missing (certificate or key) is an ERROR.

On the authority host only missing enclaves count (the CA keystore holds the others too); a
keystore of a single-machine cell gets one OK finding.  :func:`keystore_scope` tells the other
probes which enclaves to look at.
"""

from __future__ import annotations

import os

from cobot_security import checks
from cobot_security.health.probe import CA_SUBJECT, KEYSTORE_SUBJECT
from cobot_security.keystore.enclaves import enclave_dirs_holding
from cobot_security.keystore.integrity import keystore_host
from cobot_security.keystore.layout import CERT, KEY, KeystoreLayout
from cobot_security.policy.model import WorkcellPolicy
from cobot_security.status import Finding, Level


def resolve_host(layout: KeystoreLayout, policy: WorkcellPolicy, configured: str) -> tuple[str | None, str | None]:
    """(host the keystore is for, problem): from its manifest, else ``configured`` when the policy names it."""
    named = keystore_host(layout)
    known = configured if policy.host(configured) is not None else None
    if named is not None and known is not None and named != known:
        return named, f"the keystore is host {named}'s, but this reporter runs as host {known}"
    return named or known, None


def keystore_scope(layout: KeystoreLayout, policy: WorkcellPolicy, configured: str) -> WorkcellPolicy:
    """The policy restricted to the enclaves this keystore must hold (all of them on the CA machine)."""
    host, _problem = resolve_host(layout, policy, configured)
    entry = policy.host(host) if host is not None else None
    return policy.for_host(host) if entry is not None and entry.role == "member" and host is not None else policy


def _ca_keys(layout: KeystoreLayout) -> list[str]:
    private = layout.private_dir
    if not private.is_dir() or private.is_symlink():
        return []
    return sorted(f"private/{entry.name}" for entry in private.iterdir() if entry.name.endswith(".key.pem"))


def probe_host_assignment(layout: KeystoreLayout, policy: WorkcellPolicy, configured: str) -> list[Finding]:
    """HOST_ASSIGNMENT findings (see the module docstring)."""
    if not layout.root.is_dir():
        return [Finding(checks.HOST_ASSIGNMENT, KEYSTORE_SUBJECT, Level.ERROR, f"no keystore at {layout.root}")]
    host, problem = resolve_host(layout, policy, configured)
    if problem is not None:
        return [Finding(checks.HOST_ASSIGNMENT, KEYSTORE_SUBJECT, Level.ERROR, problem)]
    entry = policy.host(host) if host is not None else None
    if host is None or entry is None:
        if host is not None:
            return [Finding(checks.HOST_ASSIGNMENT, KEYSTORE_SUBJECT, Level.ERROR,
                            f"the keystore is host {host}'s, which the policy does not name")]
        return [Finding(checks.HOST_ASSIGNMENT, KEYSTORE_SUBJECT, Level.OK,
                        "keystore of a single-machine cell (no policy host)")]
    values = (("host", host), ("role", entry.role))
    findings: list[Finding] = []
    wanted = {enclave.path: enclave for enclave in policy.enclaves_on(host)}
    here = enclave_dirs_holding(layout, frozenset((CERT, KEY)))
    if entry.role == "member":
        keys = _ca_keys(layout)
        if keys:
            findings.append(Finding(checks.HOST_ASSIGNMENT, CA_SUBJECT, Level.ERROR,
                                    f"CA private key on member host {host}: {', '.join(keys)} (keep CA keys on the "
                                    "CA machine only)", values))
        for path in sorted(set(here) - set(wanted)):
            runs_on = ", ".join(policy.hosts_of(path)) or "no host of the policy"
            findings.append(Finding(checks.HOST_ASSIGNMENT, path, Level.ERROR,
                                    f"enclave {path} is not assigned to host {host} (it runs on {runs_on}): its key "
                                    "must not be here", values + (("enclave", path),)))
    for path in sorted(wanted):
        directory = here.get(path)
        if directory is None or not os.path.lexists(directory / CERT) or not os.path.lexists(directory / KEY):
            findings.append(Finding(checks.HOST_ASSIGNMENT, path, Level.ERROR,
                                    f"enclave {path} is assigned to host {host} but its certificate or key is "
                                    "missing here", values + (("enclave", path),)))
    if not findings:
        findings.append(Finding(checks.HOST_ASSIGNMENT, KEYSTORE_SUBJECT, Level.OK,
                                f"keystore of {entry.role} host {host}: its {len(wanted)} enclave(s)"
                                + (", no CA key" if entry.role == "member" else ""), values))
    return findings
