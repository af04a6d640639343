"""Skirmish maps as data: unit sets, arena, terrain, start positions and time limits.

A map is a :class:`MapSpec`; :data:`MAPS` holds the built-in ones (SMAC's names and unit
sets) and :func:`add_map` registers your own, after which ``map_name="yours"`` works in
every Skirmish config:

```python
from metaenvs.games.skirmish_maps import MapSpec, add_map

add_map(MapSpec("4m_vs_2z", allies=(("marine", 4),), enemies=(("zealot", 2),), time_limit=80))
env = metaenvs.make("skirmish", map_name="4m_vs_2z")
```

Start positions: each team stands in a block formation (columns of ``ceil(sqrt(n))``
units, 1.0 apart, units in list order), the allies' block centred at ``ally_start`` and
growing away from the enemy, the enemies' block its mirror image around the arena's
vertical centre line (or at ``enemy_start`` when given).  Every copy adds an independent
uniform jitter of ``+-spawn_jitter`` (config) to every coordinate.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from metaenvs.games.skirmish_units import UNITS


@dataclasses.dataclass(frozen=True)
class MapSpec:
    """One Skirmish map.

    Parameters
    ----------
    name : str
        The map's name (``map_name`` in configs).
    allies, enemies : tuple of (unit name, count)
        Unit sets, in slot order.
    time_limit : int
        Steps before the episode is truncated (SMAC's episode limit).
    size : (width, height)
        The arena ``[0, width] x [0, height]``.
    ally_start : (x, y) or None
        Centre of the allies' formation; default 5 left of the arena's centre.
    enemy_start : (x, y) or None
        Centre of the enemies' formation; default the mirror image of ``ally_start``.
    terrain : tuple of str or None
        Rows of the pathing grid from the top (``y = height - 1``) down, one character per
        1 x 1 cell: ``"#"`` is a wall, anything else is open.  None: all open.
    description : str
        One line for the registry.
    """

    name: str
    allies: tuple[tuple[str, int], ...]
    enemies: tuple[tuple[str, int], ...]
    time_limit: int
    size: tuple[int, int] = (32, 32)
    ally_start: tuple[float, float] | None = None
    enemy_start: tuple[float, float] | None = None
    terrain: tuple[str, ...] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        from metaenvs.config import check_int

        where = f"map {self.name!r}"
        for side_name, side in (("allies", self.allies), ("enemies", self.enemies)):
            if not side:
                raise ValueError(f"{where}: {side_name} must list (unit, count) pairs")
            for unit, count in side:
                if unit not in UNITS:
                    raise ValueError(f"{where}: unknown unit {unit!r}; known: {sorted(UNITS)}")
                check_int(f"{where}: the count of {unit}", count, 1)
            if all(UNITS[unit].healer for unit, _ in side):
                raise ValueError(f"{where}: the {side_name} need a unit that fights")
        check_int(f"{where}: time_limit", self.time_limit, 1)
        if len(self.size) != 2:
            raise ValueError(f"{where}: size must be (width, height), got {self.size!r}")
        width, height = (check_int(f"{where}: size", v, 4) for v in self.size)
        if self.terrain is not None and (
            len(self.terrain) != height or any(len(row) != width for row in self.terrain)
        ):
            raise ValueError(f"{where}: terrain must be {height} rows of {width} cells")
        grid = self.pathable()
        for x, y in self.start_positions().reshape(-1, 2):
            inside = np.isfinite(x) and np.isfinite(y) and 0 <= x < width and 0 <= y < height
            if not inside or not grid[int(y), int(x)]:
                raise ValueError(f"{where}: a start position ({x}, {y}) is not open ground")

    @property
    def ally_units(self) -> list[str]:
        """The allies' unit names, one per unit, in slot order."""
        return [u for u, n in self.allies for _ in range(n)]

    @property
    def enemy_units(self) -> list[str]:
        """The enemies' unit names, one per unit, in slot order."""
        return [u for u, n in self.enemies for _ in range(n)]

    def pathable(self) -> np.ndarray:
        """``(height, width)`` bool grid, ``[y, x]`` is True where units may stand."""
        width, height = self.size
        if self.terrain is None:
            return np.ones((height, width), dtype=np.bool_)
        rows = [[c != "#" for c in row] for row in reversed(self.terrain)]
        return np.array(rows, dtype=np.bool_)

    def start_positions(self) -> np.ndarray:
        """``(n_allies + n_enemies, 2)`` formation positions before jitter."""
        width, height = self.size
        ally = self.ally_start or (width / 2 - 5.0, height / 2)
        enemy = self.enemy_start or (width - ally[0], ally[1])
        toward = 1.0 if enemy[0] >= ally[0] else -1.0
        return np.concatenate(
            [
                _block(len(self.ally_units), ally, -toward),
                _block(len(self.enemy_units), enemy, toward),
            ]
        )


def _block(n: int, centre: tuple[float, float], away: float) -> np.ndarray:
    """``n`` positions in columns of ``ceil(sqrt(n))``, 1.0 apart, columns growing ``away``."""
    rows = math.ceil(math.sqrt(n))
    cols = math.ceil(n / rows)
    k = np.arange(n)
    col, row = k // rows, k % rows
    x = centre[0] + away * (col - (cols - 1) / 2)
    y = centre[1] + (row - (rows - 1) / 2)
    return np.stack([x, y], axis=1).astype(np.float64)


def _corridor_terrain(size: int = 32, half_width: int = 3, room: int = 9) -> tuple[str, ...]:
    """A diagonal corridor from the bottom-left room to the top-right room (SMAC's corridor:
    the sides face each other diagonally, so units must alternate east and north moves)."""
    rows = []
    for y in reversed(range(size)):
        row = ""
        for x in range(size):
            in_room = (x < room and y < room) or (x >= size - room and y >= size - room)
            row += "." if in_room or abs(x - y) <= half_width else "#"
        rows.append(row)
    return tuple(rows)


MAPS: dict[str, MapSpec] = {}
"""Every map by name (the built-ins and those added with :func:`add_map`)."""


def add_map(spec: MapSpec) -> None:
    """Register ``spec`` under ``spec.name``; an existing name raises ``ValueError``."""
    if spec.name in MAPS:
        raise ValueError(f"a map named {spec.name!r} exists already")
    MAPS[spec.name] = spec


def get_map(name: str) -> MapSpec:
    """The map called ``name``; an unknown name raises ``ValueError`` listing the maps."""
    if not isinstance(name, str):
        raise TypeError(f"a map name must be a str, got {name!r}")
    if name not in MAPS:
        from metaenvs.config import unknown_keyword_message

        raise ValueError(unknown_keyword_message("map", name, list(MAPS)))
    return MAPS[name]


for _spec in (
    MapSpec("3m", (("marine", 3),), (("marine", 3),), 60, description="3 marines each (easy)"),
    MapSpec("8m", (("marine", 8),), (("marine", 8),), 120, description="8 marines each (easy)"),
    MapSpec(
        "2s3z", (("stalker", 2), ("zealot", 3)), (("stalker", 2), ("zealot", 3)), 120,
        description="2 stalkers and 3 zealots each (easy)",
    ),
    MapSpec(
        "3s5z", (("stalker", 3), ("zealot", 5)), (("stalker", 3), ("zealot", 5)), 150,
        description="3 stalkers and 5 zealots each (easy)",
    ),
    MapSpec(
        "1c3s5z",
        (("colossus", 1), ("stalker", 3), ("zealot", 5)),
        (("colossus", 1), ("stalker", 3), ("zealot", 5)),
        180,
        description="1 colossus, 3 stalkers and 5 zealots each (easy)",
    ),
    MapSpec(
        "5m_vs_6m", (("marine", 5),), (("marine", 6),), 70, description="5 vs 6 marines (hard)"
    ),
    MapSpec(
        "8m_vs_9m", (("marine", 8),), (("marine", 9),), 120, description="8 vs 9 marines (hard)"
    ),
    MapSpec(
        "10m_vs_11m", (("marine", 10),), (("marine", 11),), 150,
        description="10 vs 11 marines (hard)",
    ),
    MapSpec(
        "MMM2",
        (("medivac", 1), ("marauder", 2), ("marine", 7)),
        (("medivac", 1), ("marauder", 3), ("marine", 8)),
        180,
        description="1 medivac, 2 marauders, 7 marines vs 1, 3, 8 (super hard)",
    ),
    MapSpec(
        "27m_vs_30m", (("marine", 27),), (("marine", 30),), 180,
        description="27 vs 30 marines (super hard)",
    ),
    MapSpec(
        "6h_vs_8z", (("hydralisk", 6),), (("zealot", 8),), 150,
        description="6 hydralisks vs 8 zealots (super hard)",
    ),
    MapSpec(
        "3s5z_vs_3s6z",
        (("stalker", 3), ("zealot", 5)),
        (("stalker", 3), ("zealot", 6)),
        170,
        description="3 stalkers and 5 zealots vs 3 and 6 (super hard)",
    ),
    MapSpec(
        "corridor", (("zealot", 6),), (("zergling", 24),), 400,
        ally_start=(4.5, 4.5), enemy_start=(27.5, 27.5), terrain=_corridor_terrain(),
        description="6 zealots vs 24 zerglings through a diagonal corridor (super hard)",
    ),
    MapSpec(
        "bane_vs_bane",
        (("zergling", 20), ("baneling", 4)),
        (("zergling", 20), ("baneling", 4)),
        200,
        description="20 zerglings and 4 banelings each (hard)",
    ),
):  # fmt: skip
    add_map(_spec)
