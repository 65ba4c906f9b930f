"""Where the API server is, as NetworkPolicy sees the dial: kind's usual addresses, a profile's production
addresses, or the cluster's own `kubernetes` EndpointSlice; preflight and the cluster probes judge against it."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from tests.apidouble import ApiDouble
from tests.test_policy_probe import DNS_ONLY, POLICY, PROBE, REDIS, bundle_of, install_probed, netpol
from tests.test_preflight import V2111, edited, fixture, run
from validator.apiserver import (
    KIND_API_SERVER,
    ApiServer,
    api_server_from_cluster,
    api_server_from_profile,
    parse_address,
)
from validator.cli import main
from validator.cluster.apiserver import SLICES_PATH, discover_api_server
from validator.cluster.netpol import BLOCKED, CONNECT, plan_policy_probes, unmirrored_api_access
from validator.errors import EnvironmentNotReady, InputError
from validator.preflight.netpol import admits_api
from validator.profiles import load_profile, profile_from_dict

net = ipaddress.ip_network


# ---------------------------------------------------------------------------------------------------------
# addresses (pure)
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("10.0.0.0/16:443", (net("10.0.0.0/16"), 443)),
    ("10.0.1.5:443", (net("10.0.1.5/32"), 443)),
    ("10.0.1.5/24:6443", (net("10.0.1.0/24"), 6443)),  # host bits dropped, as NetworkPolicy's cidr is read
    ("[fd00::/64]:443", (net("fd00::/64"), 443)),
    ("[fd00::1]:6443", (net("fd00::1/128"), 6443)),
])
def test_addresses_parse(text: str, expected: tuple[Any, int]) -> None:
    assert parse_address(text, "x") == expected


@pytest.mark.parametrize("text", ["10.0.0.0/16", "10.0.0.1:0", "10.0.0.1:70000", "10.0.0.1:https", "host:443",
                                  "fd00::1:443", "", 443, None, ["10.0.0.1:443"]])
def test_bad_addresses_are_one_line_input_errors(text: Any) -> None:
    with pytest.raises(InputError, match=r"^x: .* is not ADDRESS\[/PREFIX\]:PORT") as err:
        parse_address(text, "x")
    assert "\n" not in str(err.value)


def test_profile_api_server_states_production_addresses() -> None:
    api = api_server_from_profile({"endpoints": ["10.0.12.0/24:443", "10.0.13.7:443"], "service": "172.20.0.1:443"},
                                  "prod")
    assert api.endpoints == ((net("10.0.12.0/24"), 443), (net("10.0.13.7/32"), 443))
    assert api.service == (net("172.20.0.1/32"), 443) and api.source == "profile prod"
    assert api.describe() == "10.0.12.0/24:443, 10.0.13.7:443 (profile prod)"
    assert api_server_from_profile({"endpoints": ["10.0.12.0/24:443"]}, "prod").service is None


@pytest.mark.parametrize(("raw", "expected"), [
    (["10.0.0.1:443"], "must be a mapping with endpoints"),
    ({"endpoints": ["10.0.0.1:443"], "port": 443}, "must be a mapping with endpoints"),
    ({"service": "10.0.0.1:443"}, "endpoints must be a list of 1 to 64"),
    ({"endpoints": []}, "endpoints must be a list of 1 to 64"),
    ({"endpoints": "10.0.0.1:443"}, "endpoints must be a list of 1 to 64"),
    ({"endpoints": [f"10.0.0.{i}:443" for i in range(65)]}, "endpoints must be a list of 1 to 64"),
    ({"endpoints": ["10.0.0.1"]}, "apiServer.endpoints: '10.0.0.1' is not ADDRESS"),
    ({"endpoints": ["10.0.0.1:443"], "service": "10.96.0.1"}, "apiServer.service: '10.96.0.1' is not ADDRESS"),
])
def test_bad_profile_api_server_is_input_error(raw: Any, expected: str) -> None:
    with pytest.raises(InputError, match=expected):
        profile_from_dict({"name": "prod", "apiServer": raw}, "prod")


def test_cluster_endpoint_slices_become_the_api_server() -> None:
    service = {"spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443}]}}
    slices = [{"ports": [{"name": "https", "port": 6443, "protocol": "TCP"}],
               "endpoints": [{"addresses": ["172.19.0.2"], "conditions": {"ready": True}},
                             {"addresses": ["172.19.0.9"], "conditions": {"ready": False}},  # kube-proxy skips it
                             {"addresses": ["172.19.0.3"]}]},
              {"ports": [{"port": 6443}], "endpoints": [{"addresses": ["172.19.0.2"]}]}]  # a mirrored duplicate
    api = api_server_from_cluster(service, slices)
    assert api is not None
    assert api.endpoints == ((net("172.19.0.2/32"), 6443), (net("172.19.0.3/32"), 6443))
    assert api.service == (net("10.96.0.1/32"), 443)
    assert api_server_from_cluster(service, [{"ports": [{"port": 6443}], "endpoints": []}]) is None
    assert api_server_from_cluster({}, slices).service is None  # type: ignore[union-attr]


@pytest.mark.parametrize(("cidrs", "expected"), [
    (["10.0.0.0/8"], True),  # every endpoint
    (["10.0.12.0/24"], None),  # one of two: a dial's luck decides
    (["192.168.0.0/16"], False),
    (["10.0.12.0/24", "10.0.13.0/24"], True),
])
def test_rules_must_admit_every_endpoint(cidrs: list[str], expected: bool | None) -> None:
    api = ApiServer(endpoints=((net("10.0.12.5/32"), 443), (net("10.0.13.5/32"), 443)), service=None, source="t")
    rules = [{"to": [{"ipBlock": {"cidr": c}}], "ports": [{"port": 443}]} for c in cidrs]
    assert admits_api(rules, api) is expected


# ---------------------------------------------------------------------------------------------------------
# preflight against a profile's production addresses
# ---------------------------------------------------------------------------------------------------------


def _allow(cidr: str, port: int) -> Any:
    def edit(body: dict[str, Any]) -> None:
        body["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": cidr}}], "ports": [{"port": port}]})
    return edit


PROD = {"name": "prod", "apiServer": {"endpoints": ["10.0.12.7:443", "10.0.13.7:443"], "service": "172.20.0.1:443"}}


def test_a_team_overlay_admitting_its_control_plane_passes_against_production_addresses() -> None:
    """A kustomize overlay that adds 'egress to our control plane, 10.0.0.0/16:443' to the redis policy: right for
    production (EKS-like endpoints on 443), wrong for kind's 172.18.0.0/16:6443."""
    overlay = edited(fixture(V2111), "NetworkPolicy", "argocd-redis-network-policy", _allow("10.0.0.0/16", 443))
    (kind_error,) = run(overlay, "networkpolicy-api-egress")
    assert kind_error.severity == "error" and "172.18.0.0/16:6443 (kind's usual addresses)" in kind_error.reason
    assert run(overlay, "networkpolicy-api-egress", profile_from_dict(PROD, "prod")) == []


def test_production_addresses_judge_the_v2_11_1_policy_too() -> None:
    (finding,) = run(fixture(V2111), "networkpolicy-api-egress", profile_from_dict(PROD, "prod"))
    assert finding.severity == "error"
    assert "no rule admits the API server's endpoint(s) 10.0.12.7:443, 10.0.13.7:443 (profile prod)" in finding.reason
    assert finding.evidence["api_endpoints"] == ["10.0.12.7:443", "10.0.13.7:443"]
    assert finding.evidence["api_service"] == "172.20.0.1:443"
    assert finding.evidence["api_server_source"] == "profile prod"


def test_admitting_one_of_two_production_endpoints_is_a_warning() -> None:
    overlay = edited(fixture(V2111), "NetworkPolicy", "argocd-redis-network-policy", _allow("10.0.12.0/24", 443))
    (finding,) = run(overlay, "networkpolicy-api-egress", profile_from_dict(PROD, "prod"))
    assert finding.severity == "warning" and "only part of the API server's endpoint(s)" in finding.reason


def test_profile_file_with_api_server_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "prod.yaml"
    profile.write_text("name: prod\napiServer:\n  endpoints: ['10.0.12.7:443']\n")
    assert load_profile(str(profile)).api_server is not None
    assert main(["preflight", str(Path(__file__).parent / "fixtures" / "preflight" / V2111),
                 "--profile", str(profile), "--check", "networkpolicy-api-egress"]) == 1
    assert "10.0.12.7:443 (profile prod)" in capsys.readouterr().out
    profile.write_text("name: prod\napiServer:\n  endpoints: ['10.0.12.7']\n")
    assert main(["preflight", str(Path(__file__).parent / "fixtures" / "preflight" / V2111),
                 "--profile", str(profile)]) == 2
    err = capsys.readouterr().err
    assert "profile prod: apiServer.endpoints: '10.0.12.7' is not ADDRESS[/PREFIX]:PORT" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------------------
# the cluster's own addresses, for the probes that run on it (API double)
# ---------------------------------------------------------------------------------------------------------


def test_discovery_reads_the_kubernetes_endpoint_slice() -> None:
    with ApiDouble() as double:
        api, why = discover_api_server(double.api_client())
    assert why == "" and api is not None
    assert api.endpoints == ((net("172.18.0.2/32"), 6443),) and api.service == (net("10.96.0.1/32"), 443)


# kind's docker network is whatever subnet Docker hands out: 172.19.0.0/16 when 172.18.0.0/16 is taken
KIND_ON_172_19 = ("172.19.0.2", 6443)
ADMITS_172_18 = [netpol(POLICY, {"matchLabels": {"app.kubernetes.io/name": REDIS}}, ["Ingress", "Egress"],
                        [*DNS_ONLY, {"to": [{"ipBlock": {"cidr": "172.18.0.0/16"}}], "ports": [{"port": 6443}]}])]
ADMITS_172_19 = [netpol(POLICY, {"matchLabels": {"app.kubernetes.io/name": REDIS}}, ["Ingress", "Egress"],
                        [*DNS_ONLY, {"to": [{"ipBlock": {"cidr": "172.19.0.0/16"}}], "ports": [{"port": 6443}]}])]


def test_probes_expect_what_this_cluster_does_not_what_kind_usually_does() -> None:
    """Judged against kind's usual 172.18.0.0/16 the probe would be expected to connect, the network blocks it,
    and the run would end 'could not validate'. Against the discovered 172.19.0.2 it is expected blocked: right."""
    (usual,), _ = plan_policy_probes(bundle_of(*ADMITS_172_18))
    assert usual.expect == CONNECT
    with ApiDouble(api_endpoint=KIND_ON_172_19) as double:
        progress: list[str] = []
        install_probed(double, bundle_of(*ADMITS_172_18), progress)
        (name, _dials, code), = double.network.runs
        assert (name, code) == (PROBE, 0)
        assert f"NetworkPolicy argocd/{POLICY} is enforced for a new pod (probe {BLOCKED})" in progress
        assert any("the API server is at 172.19.0.2:6443 (this cluster's kubernetes EndpointSlice)" in line
                   for line in progress)


def test_a_policy_admitting_this_clusters_network_is_proven_connecting() -> None:
    with ApiDouble(api_endpoint=KIND_ON_172_19) as double:
        progress: list[str] = []
        install_probed(double, bundle_of(*ADMITS_172_19), progress)
        assert f"NetworkPolicy argocd/{POLICY} is enforced for a new pod (probe {CONNECT})" in progress


def test_unreadable_endpoint_slice_falls_back_to_kind_and_the_probe_still_judges() -> None:
    """RBAC on someone else's cluster may hide the EndpointSlice: the plan falls back to kind's usual addresses,
    says so, and a probe that disagrees with it is 'could not validate', never a verdict on the candidate."""
    with ApiDouble(api_endpoint=KIND_ON_172_19) as double:
        double.fail(status=403, count=1, path_contains=SLICES_PATH)
        progress: list[str] = []
        with pytest.raises(EnvironmentNotReady, match="admits egress to the API server"):
            install_probed(double, bundle_of(*ADMITS_172_18), progress)
        assert any(line.startswith("could not read where this cluster serves the API (HTTP 403")
                   and KIND_API_SERVER.describe() in line for line in progress)
        assert double.get("Pod", PROBE, "argocd") is None


# ---------------------------------------------------------------------------------------------------------
# a mirror that cannot reproduce production's addressing must not judge the candidate
# ---------------------------------------------------------------------------------------------------------

PRODUCTION = api_server_from_profile(PROD["apiServer"], "prod")
ADMITS_PRODUCTION = [netpol(POLICY, {"matchLabels": {"app.kubernetes.io/name": REDIS}}, ["Ingress", "Egress"],
                            [*DNS_ONLY, {"to": [{"ipBlock": {"cidr": "10.0.0.0/16"}}], "ports": [{"port": 443}]}])]


def test_policies_admitting_production_but_not_the_mirror_are_named() -> None:
    (line,) = unmirrored_api_access(bundle_of(*ADMITS_PRODUCTION), KIND_API_SERVER, PRODUCTION)
    assert line.startswith(f"Deployment argocd-redis: NetworkPolicy {POLICY} admit(s) the API server at "
                           "10.0.12.7:443, 10.0.13.7:443 (profile prod) but not at 172.18.0.0/16:6443")
    both = [netpol(POLICY, {"matchLabels": {"app.kubernetes.io/name": REDIS}}, ["Ingress", "Egress"],
                   [*DNS_ONLY, {"to": [{"ipBlock": {"cidr": "10.0.0.0/16"}}], "ports": [{"port": 443}]},
                    {"to": [{"ipBlock": {"cidr": "172.16.0.0/12"}}], "ports": [{"port": 6443}]}])]
    assert unmirrored_api_access(bundle_of(*both), KIND_API_SERVER, PRODUCTION) == []
    # blocked in both places is the candidate's fault, not the mirror's (preflight errs, the mirror shows it)
    dns_only = netpol(POLICY, {"matchLabels": {"app.kubernetes.io/name": REDIS}}, ["Ingress", "Egress"], DNS_ONLY)
    assert unmirrored_api_access(bundle_of(dns_only), KIND_API_SERVER, PRODUCTION) == []


def test_the_probe_stage_stops_as_could_not_validate_before_any_probe_or_workload() -> None:
    with ApiDouble() as double:
        with pytest.raises(EnvironmentNotReady, match="could not validate: this mirror cannot reproduce "
                                                      "production's API server addressing: Deployment argocd-redis"):
            install_probed(double, bundle_of(*ADMITS_PRODUCTION), [], production=PRODUCTION)
        assert double.network.runs == [] and double.get("Deployment", REDIS, "argocd") is None


def test_thousands_of_policies_selecting_a_pod_are_named_in_bounded_space() -> None:
    """9,000 policies selecting 999 Deployments each listed every policy and rule in every finding: 2 GB, then a
    MemoryError. A finding names ten of each and how many more."""
    policies = [netpol(f"p{i}", {"matchLabels": {"app.kubernetes.io/name": REDIS}}, ["Egress"],
                       [{"ports": [{"port": 5300 + i}]}]) for i in range(25)]
    (finding,) = run(bundle_of(*policies), "networkpolicy-api-egress")
    assert finding.evidence["policies"] == [*(f"p{i}" for i in range(10)), "15 more"]
    assert finding.evidence["allowed_egress"][-1] == "15 more" and len(finding.objects) == 11
    assert "NetworkPolicy p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, 15 more restricts egress" in finding.reason


def test_some_names_the_first_ten_and_counts_the_rest_without_building_them() -> None:
    from validator.preflight.netpol import some

    names = [f"p{i}" for i in range(25)]
    assert some(names) == some(iter(names)) == [*names[:10], "15 more"]
    assert some(names[:10]) == names[:10]
    built: list[int] = []
    assert some((built.append(i) or str(i) for i in range(1000)), total=1000)[-1] == "990 more"
    assert len(built) == 10  # the other 990 descriptions are never made
