"""Steps `shequ demo all` runs after migrate + demo load, in order: CLI argument lists.

Each feature appends its own step(s) here (one line each)."""

DEMO_STEPS: list[list[str]] = [
    ["grid", "boundaries"],
    ["address", "build"],
    ["grid", "build", "--all"],
    ["coverage", "--type", "幼儿园", "--distance", "walk", "-o", "var/demo-output/coverage"],
    ["siting", "cameras", "-o", "var/demo-output/cameras"],
    ["tiles", "seed", "--layers", "basemap", "--zooms", "12-16"],
    # synthetic residents, houses and units (一标三实; fixed seed, marked source=synthetic, never real people)
    ["residents", "demo"],
    # issue 12: key places from the POIs, demo grid staff (synthetic names) so scanned plates show whom to contact
    ["key-places", "seed"], ["plates", "demo-contacts"],
    # the admin account (random password, written once to the secrets folder) and, in demo mode
    # (SHEQU_DEMO=1, which `make run` sets), one labelled demo account per role
    ["user", "bootstrap"],
]
