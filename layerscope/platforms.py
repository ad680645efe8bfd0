"""Platform names (`os/arch[/variant]`) as every source chooses images by them: one definition for the
archive, OCI and registry sources."""

from __future__ import annotations

import platform as host_platform


def host_platform_name() -> str:
    """This machine's platform as OCI names it (`linux/amd64`, `linux/arm64`, `linux/arm/v7`)."""
    machine = host_platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    if arch is None and machine.startswith("armv7"):
        return "linux/arm/v7"
    return f"linux/{arch or machine}"


def platform_matches(present: str, wanted: str) -> bool:
    """os/arch must match; the variant only when the wanted platform names one (arm64 without a
    variant is v8, as the OCI image index spec says)."""
    have, want = present.split("/"), wanted.split("/")
    if have[:2] != want[:2]:
        return False
    if len(want) < 3:
        return True
    variant = have[2] if len(have) > 2 else ("v8" if have[1] == "arm64" else "")
    return variant == want[2]
