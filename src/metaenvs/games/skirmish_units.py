"""The unit table of Skirmish: every number a unit fights with, in one place.

Inspired by SMAC's units (StarCraft II, Legacy of the Void, "faster" game speed), **not**
StarCraft II: values are rounded, attacks are instant, there is no acceleration, no
pathfinding (units slide along walls), no upgrades, no energy; overlapping units push each
other apart.  Times are in game seconds; one env step is
``STEP_SECONDS`` (SMAC's 8 game loops at 22.4 loops per second).

| unit | hp | shield | armour | damage x hits | bonus | range | cooldown | speed | radius | kind |
|---|---|---|---|---|---|---|---|---|---|---|
| marine | 45 | 0 | 0 | 6 x 1 | | 5 | 0.61 | 3.15 | 0.375 | light, biological |
| marauder | 125 | 0 | 1 | 10 x 1 | +10 armoured | 6 | 1.07 | 3.15 | 0.5625 | armoured, biological |
| medivac | 150 | 0 | 1 | heals 12.6 hp/s | | 4 | | 3.5 | 0.75 | armoured, mechanical |
| stalker | 80 | 80 | 1 | 13 x 1 | +5 armoured | 6 | 1.34 | 4.13 | 0.625 | armoured, mechanical |
| zealot | 100 | 50 | 1 | 8 x 2 | | 0.1 | 0.86 | 3.15 | 0.5 | light, biological |
| colossus | 200 | 150 | 1 | 10 x 2 | +5 light | 7 | 1.07 | 3.15 | 1.0 | armoured, mechanical |
| zergling | 35 | 0 | 0 | 5 x 1 | | 0.1 | 0.497 | 4.13 | 0.375 | light, biological |
| hydralisk | 90 | 0 | 0 | 12 x 1 | | 5 | 0.59 | 3.15 | 0.625 | light, biological |
| baneling | 30 | 0 | 0 | 16 x 1 | +19 light | 0.25 | | 3.5 | 0.375 | biological |

Rules the table feeds (see :mod:`metaenvs.games.skirmish` for the whole step):

- **Range** is measured between the edges of the two units: a target is in range when
  ``distance - radius_a - radius_t <= range``.  **Reach**, how far an attack or heal order
  may be given, is measured between centres: ``max(6, range)``.  Beyond its range (but in
  reach) an ordered unit walks up.
- **A hit** does ``damage + bonus`` (the bonus when the target has the attribute).  Shields
  take it first, unreduced; what gets through to hit points is reduced by armour, to no
  less than 0.5.  A unit with ``hits = 2`` lands the hit twice.
- **Splash**: the colossus's hit also lands on the target's team mates whose centres are
  within 1.0 of the target's; a baneling explodes (and dies) on attack, hitting every
  enemy whose edge is within 2.2 of its own.
- **Healing**: a medivac restores 12.6 hp per second to a biological ally in range,
  never above its maximum.
- **Shields** regenerate 2 per second once a unit has taken no damage for 10 seconds.
"""

from __future__ import annotations

import dataclasses

import numpy as np

STEP_SECONDS = 8 / 22.4
"""Game seconds per env step (SMAC's step_mul of 8 game loops at 22.4 loops per second)."""
SIGHT_RANGE = 9.0
"""Every unit sees this far (SMAC's sight range)."""
SHOOT_RANGE = 6.0
"""An attack or heal order is available on a target this close (SMAC's shoot range), or
within the unit's own range if that is longer; beyond its own range the unit walks up."""
SPLASH_RADIUS = 1.0
BANELING_RADIUS = 2.2
SHIELD_REGEN = 2.0
SHIELD_DELAY = 10.0

LIGHT, ARMOURED, BIOLOGICAL, MECHANICAL = 1, 2, 4, 8
ATTRIBUTES = {
    "light": LIGHT,
    "armoured": ARMOURED,
    "biological": BIOLOGICAL,
    "mechanical": MECHANICAL,
}


@dataclasses.dataclass(frozen=True)
class UnitType:
    """One unit type's numbers (see the module's table)."""

    name: str
    race: str
    hp: float
    shield: float
    armour: float
    damage: float
    hits: int
    cooldown: float
    range: float
    speed: float
    radius: float
    attributes: tuple[str, ...]
    bonus: float = 0.0
    bonus_vs: str | None = None
    heal: float = 0.0
    splash: bool = False
    suicide: bool = False

    @property
    def healer(self) -> bool:
        """Heals team mates instead of attacking."""
        return self.heal > 0.0

    @property
    def attribute_bits(self) -> int:
        """The attributes as a bit mask of :data:`ATTRIBUTES`."""
        return sum(ATTRIBUTES[a] for a in self.attributes)


_LB = ("light", "biological")
UNITS: dict[str, UnitType] = {
    u.name: u
    for u in (
        UnitType("marine", "terran", 45, 0, 0, 6, 1, 0.61, 5, 3.15, 0.375, _LB),
        UnitType(
            "marauder", "terran", 125, 0, 1, 10, 1, 1.07, 6, 3.15, 0.5625,
            ("armoured", "biological"), bonus=10, bonus_vs="armoured",
        ),
        UnitType(
            "medivac", "terran", 150, 0, 1, 0, 0, 0.0, 4, 3.5, 0.75,
            ("armoured", "mechanical"), heal=12.6,
        ),
        UnitType(
            "stalker", "protoss", 80, 80, 1, 13, 1, 1.34, 6, 4.13, 0.625,
            ("armoured", "mechanical"), bonus=5, bonus_vs="armoured",
        ),
        UnitType("zealot", "protoss", 100, 50, 1, 8, 2, 0.86, 0.1, 3.15, 0.5, _LB),
        UnitType(
            "colossus", "protoss", 200, 150, 1, 10, 2, 1.07, 7, 3.15, 1.0,
            ("armoured", "mechanical"), bonus=5, bonus_vs="light", splash=True,
        ),
        UnitType("zergling", "zerg", 35, 0, 0, 5, 1, 0.497, 0.1, 4.13, 0.375, _LB),
        UnitType("hydralisk", "zerg", 90, 0, 0, 12, 1, 0.59, 5, 3.15, 0.625, _LB),
        UnitType(
            "baneling", "zerg", 30, 0, 0, 16, 1, 0.0, 0.25, 3.5, 0.375, ("biological",),
            bonus=19, bonus_vs="light", suicide=True,
        ),
    )
}  # fmt: skip
"""Every unit type by name."""

# columns of the kernels' unit table, one row per unit type present in a map
(HP, SHIELD, ARMOUR, DAMAGE, HITS, BONUS, BONUS_VS, COOLDOWN, RANGE, SPEED, RADIUS, ATTRS, HEAL,
 SPLASH, SUICIDE, REACH) = range(16)  # fmt: skip
N_COLUMNS = 16


def unit_table(names: list[str]) -> np.ndarray:
    """The kernels' ``(T, N_COLUMNS)`` float64 table of the unit types ``names``, in order.

    ``REACH`` is how far an order may target: ``max(SHOOT_RANGE, range)``.
    """
    table = np.zeros((len(names), N_COLUMNS))
    for k, name in enumerate(names):
        u = UNITS[name]
        table[k, HP], table[k, SHIELD], table[k, ARMOUR] = u.hp, u.shield, u.armour
        table[k, DAMAGE], table[k, HITS], table[k, BONUS] = u.damage, u.hits, u.bonus
        table[k, BONUS_VS] = ATTRIBUTES[u.bonus_vs] if u.bonus_vs else 0
        table[k, COOLDOWN], table[k, RANGE] = u.cooldown, u.range
        table[k, SPEED], table[k, RADIUS] = u.speed, u.radius
        table[k, ATTRS], table[k, HEAL] = u.attribute_bits, u.heal
        table[k, SPLASH], table[k, SUICIDE] = float(u.splash), float(u.suicide)
        table[k, REACH] = max(SHOOT_RANGE, u.range)
    return table
