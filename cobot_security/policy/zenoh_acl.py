"""The Zenoh router's ``access_control`` document for a policy (pure): default deny, one subject per enclave.

The router enforces it on every session's link: *ingress* is what a session sends to the router,
*egress* what the router forwards to it.  Sessions are identified by the common name of their
mutual-TLS certificate, which is the enclave path (``cert_common_names``), so the rules follow
the identity the keystore issued, not an address.  Per enclave and grant kind:

| grant | ingress (from the session) | egress (to the session) |
|---|---|---|
| publish | ``put`` | ``declare_subscriber`` (so its publisher learns who listens) |
| subscribe | ``declare_subscriber`` | ``put`` |
| serve | ``declare_queryable``, ``reply`` | ``query`` |
| call | ``query`` | ``declare_queryable``, ``reply`` |

plus rmw_zenoh's graph: liveliness tokens, liveliness queries and their replies, and liveliness
subscribers under ``@ros2_lv/<domain>/**``, both ways.  Everything else, including every key of an
enclave that is left out (revoked), is denied.
"""

from __future__ import annotations

from collections.abc import Iterable

from cobot_security.policy.keyexpr import LIVELINESS_SPACE, ZenohGrants

#: grant kind → ((ingress messages), (egress messages))
_MESSAGES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "publish": (("put",), ("declare_subscriber",)),
    "subscribe": (("declare_subscriber",), ("put",)),
    "serve": (("declare_queryable", "reply"), ("query",)),
    "call": (("query",), ("declare_queryable", "reply")),
}
LIVELINESS_MESSAGES = ("liveliness_token", "liveliness_query", "declare_liveliness_subscriber", "reply")


def _rule(rule_id: str, messages: tuple[str, ...], flow: str, keys: list[str]) -> dict[str, object]:
    return {"id": rule_id, "messages": list(messages), "flows": [flow], "permission": "allow", "key_exprs": keys}


def _enclave_rules(enclave: str, grants: list[ZenohGrants], domains: list[int]) -> list[dict[str, object]]:
    rules = []
    for kind, (ingress, egress) in _MESSAGES.items():
        keys = sorted({key for grant in grants for key in getattr(grant, kind)})
        if keys:
            rules.append(_rule(f"{enclave}:{kind}:ingress", ingress, "ingress", keys))
            rules.append(_rule(f"{enclave}:{kind}:egress", egress, "egress", keys))
    liveliness = [f"{LIVELINESS_SPACE}/{domain}/**" for domain in domains]
    rules.append({"id": f"{enclave}:liveliness", "messages": list(LIVELINESS_MESSAGES),
                  "flows": ["ingress", "egress"], "permission": "allow", "key_exprs": liveliness})
    return rules


def render_access_control(grants: Iterable[ZenohGrants], domains: Iterable[int],
                          excluded: frozenset[str] = frozenset()) -> dict[str, object]:
    """The ``access_control`` section: enabled, default deny, rules/subjects/policies per enclave.

    ``excluded`` enclaves (revoked identities) get no subject and so no permission at all.
    """
    domain_list = sorted(set(domains))
    by_enclave: dict[str, list[ZenohGrants]] = {}
    for grant in grants:
        if grant.enclave not in excluded:
            by_enclave.setdefault(grant.enclave, []).append(grant)
    rules: list[dict[str, object]] = []
    subjects: list[dict[str, object]] = []
    policies: list[dict[str, object]] = []
    for enclave in sorted(by_enclave):
        enclave_rules = _enclave_rules(enclave, by_enclave[enclave], domain_list)
        rules += enclave_rules
        subjects.append({"id": enclave, "cert_common_names": [enclave]})
        policies.append({"id": enclave, "rules": [str(rule["id"]) for rule in enclave_rules], "subjects": [enclave]})
    return {"enabled": True, "default_permission": "deny", "rules": rules, "subjects": subjects,
            "policies": policies}
