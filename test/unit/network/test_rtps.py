"""RTPS port mapping against the values of DDSI-RTPS 9.6.1.1 with the default gains."""

import pytest

from cobot_security.network.rtps import compress_ports, compute_rtps_ports


def test_domain_0_participant_0():
    ports = compute_rtps_ports(0, 1)
    assert (ports.discovery_multicast, ports.discovery_unicast, ports.user_multicast, ports.user_unicast) == (
        7400, (7410,), 7401, (7411,))


def test_domain_42_two_participants():
    ports = compute_rtps_ports(42, 2)
    assert ports.discovery_multicast == 17900 and ports.user_multicast == 17901
    assert ports.discovery_unicast == (17910, 17912)
    assert ports.user_unicast == (17911, 17913)
    assert ports.unicast_ports == (17910, 17911, 17912, 17913)
    assert ports.all_ports == (17900, 17901, 17910, 17911, 17912, 17913)


def test_domain_1_and_highest_domain():
    assert compute_rtps_ports(1, 1).discovery_multicast == 7650
    top = compute_rtps_ports(232, 63)
    assert top.discovery_multicast == 65400 and max(top.all_ports) == 65535
    with pytest.raises(ValueError, match=r"at most 63 in domain 232 \(port 65537 > 65535\)"):
        compute_rtps_ports(232, 64)


@pytest.mark.parametrize("domain_id,participants", [(-1, 1), (233, 1), (0, 0), (0, 121), (True, 1)])
def test_out_of_range_is_refused(domain_id, participants):
    with pytest.raises(ValueError, match="must be"):
        compute_rtps_ports(domain_id, participants)


def test_compress_ports():
    assert compress_ports([7412, 7410, 7411, 7420]) == ((7410, 7412), (7420, 7420))
    assert compress_ports([]) == ()
