"""Cloud Run's published prices, per region, turned into a price per running agent-hour.

Source: https://cloud.google.com/run/pricing, "Services with instance-based billing" (CPU always
allocated, which is how the cloud_run runtime deploys agents: cpu_idle false), read 2026-11-27.
Tier 1: $0.000018 per vCPU-second and $0.000002 per GiB-second; Tier 2 regions list 1.4 times
those ($0.0000252 and $0.0000028). No free tier is subtracted: it is shared by the billing account.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = "cloud.google.com/run/pricing (instance-based billing), read 2026-11-27"
_TIER_1 = (0.000018, 0.000002)
_TIER_2 = (0.0000252, 0.0000028)
# From cloud.google.com/run/docs/locations, the regions most deployments choose.
TIER_1_REGIONS = (
    "asia-east1", "asia-northeast1", "asia-northeast2", "europe-north1", "europe-southwest1", "europe-west1",
    "europe-west4", "europe-west8", "europe-west9", "me-west1", "us-central1", "us-east1", "us-east4",
    "us-east5", "us-south1", "us-west1",
)  # fmt: skip
TIER_2_REGIONS = (
    "africa-south1", "asia-east2", "asia-northeast3", "asia-south1", "asia-south2", "asia-southeast1",
    "asia-southeast2", "australia-southeast1", "australia-southeast2", "europe-central2", "europe-west2",
    "europe-west3", "europe-west6", "europe-west10", "europe-west12", "me-central1", "me-central2",
    "northamerica-northeast1", "northamerica-northeast2", "southamerica-east1", "southamerica-west1",
    "us-west2", "us-west3", "us-west4",
)  # fmt: skip
REGIONS = tuple(sorted(TIER_1_REGIONS + TIER_2_REGIONS))
DEFAULT_REGION = "us-central1"
# What the cloud_run runtime gives an agent by default: PARADYZE_DOCKER_CPUS=1, a 1 GiB ElizaOS limit.
DEFAULT_VCPUS = 1.0
DEFAULT_GIB = 1.0


@dataclass(frozen=True)
class Price:
    region: str
    tier: int
    per_vcpu_second: float
    per_gib_second: float

    def per_agent_hour(self, vcpus: float = DEFAULT_VCPUS, gib: float = DEFAULT_GIB) -> float:
        return (vcpus * self.per_vcpu_second + gib * self.per_gib_second) * 3600


def price(region: str) -> Price:
    """The published instance-based price for a region; unknown regions raise KeyError."""
    if region in TIER_1_REGIONS:
        return Price(region, 1, *_TIER_1)
    if region in TIER_2_REGIONS:
        return Price(region, 2, *_TIER_2)
    raise KeyError(f"{region} is not a Cloud Run region this console knows the price of")
