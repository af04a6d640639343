"""The unit and map tables that users read (docs/skirmish.md, the units module's docstring)
say what the code does: every row is checked against UNITS and MAPS."""

import re
from pathlib import Path

import pytest

from metaenvs.games import skirmish_units
from metaenvs.games.skirmish_maps import MAPS
from metaenvs.games.skirmish_units import UNITS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "skirmish.md"
BUILT_IN = [
    "3m", "8m", "2s3z", "3s5z", "1c3s5z", "5m_vs_6m", "8m_vs_9m", "10m_vs_11m", "bane_vs_bane",
    "MMM2", "27m_vs_30m", "6h_vs_8z", "3s5z_vs_3s6z", "corridor",
]  # fmt: skip
PLURAL = {"colossus": "colossus", "medivac": "medivacs"}


def table_rows(text: str, first_header: str) -> list[list[str]]:
    """Cells of the Markdown table whose header row starts with ``first_header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def unit_list(cell: str) -> tuple[tuple[str, int], ...]:
    """``"1 medivac, 2 marauders"`` -> ``(("medivac", 1), ("marauder", 2))``."""
    out = []
    for part in cell.split(","):
        count, name = part.strip().split(" ", 1)
        singular = next(u for u in UNITS if name in (u, f"{u}s", PLURAL.get(u)))
        out.append((singular, int(count)))
    return tuple(out)


def test_the_docs_map_table_matches_the_maps():
    rows = {r[0]: r for r in table_rows(DOCS.read_text(), "map")}
    assert sorted(rows) == sorted(BUILT_IN)
    for name in BUILT_IN:
        spec = MAPS[name]
        _, allies, enemies, limit, _ = rows[name]
        assert unit_list(allies) == spec.allies, name
        assert unit_list(enemies) == spec.enemies, name
        assert int(limit) == spec.time_limit, name


@pytest.mark.parametrize("where", ["units docstring", "README"])
@pytest.mark.parametrize("name", sorted(UNITS))
def test_the_unit_table_matches_the_units(name, where):
    text = skirmish_units.__doc__ if where != "README" else (ROOT / "README.md").read_text()
    rows = {r[0]: r for r in table_rows(text, "unit")}
    u = UNITS[name]
    _, hp, shield, armour, damage, bonus, rng, cooldown, speed, radius, kind = rows[name]
    assert (float(hp), float(shield), float(armour)) == (u.hp, u.shield, u.armour)
    if u.healer:
        assert re.fullmatch(r"heals ([\d.]+) hp/s", damage).group(1) == str(u.heal)
    else:
        hit, hits = re.fullmatch(r"([\d.]+) x (\d+)", damage).groups()
        assert (float(hit), int(hits)) == (u.damage, u.hits)
    assert bonus == (f"+{u.bonus:g} {u.bonus_vs}" if u.bonus else "")
    assert float(rng) == u.range and float(speed) == u.speed and float(radius) == u.radius
    assert (float(cooldown) if cooldown else 0.0) == u.cooldown
    assert tuple(k.strip() for k in kind.split(",")) == u.attributes
