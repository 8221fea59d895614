"""Steps `shequ demo all` runs after migrate + demo load, in order: CLI argument lists.

Each feature appends its own step(s) here (one line each)."""

DEMO_STEPS: list[list[str]] = [
    ["grid", "boundaries"],
    ["address", "build"],
    ["grid", "build", "--all"],
    ["coverage", "--type", "幼儿园", "--distance", "walk", "-o", "var/demo-output/coverage"],
    # the camera plan and the next three kindergartens are saved: the map page's 监控摄像头 / 规划设施 layers show them
    ["siting", "cameras", "--save", "-o", "var/demo-output/cameras"],
    ["siting", "plan", "--type", "幼儿园", "--model", "mclp", "--new", "3", "--save", "-o", "var/demo-output/siting"],
    # 5/10/15-minute walking isochrones of the kindergartens (offline map + GeoJSON)
    ["siting", "isochrones", "--type", "幼儿园", "-o", "var/demo-output/isochrones"],
    ["tiles", "seed", "--layers", "basemap", "--zooms", "12-16"],
    # synthetic residents, houses and units (一标三实; fixed seed, marked source=synthetic, never real people)
    ["residents", "demo"],
    # issue 12: key places from the POIs, demo grid staff (synthetic names) so scanned plates show whom to contact
    ["key-places", "seed"], ["plates", "demo-contacts"],
    # the admin account (random password, written once to the secrets folder) and, in demo mode
    # (SHEQU_DEMO=1, which `make run` sets), one labelled demo account per role
    ["user", "bootstrap"],
]
