"""Floor plans of the synthetic homes: rooms, walls, cameras, activity spots, and the
geometry the generator needs (perspective projection, line of sight, walking paths).

Two styles, after the two MultiSensor-Home environments:
- `rooms`: one camera per room, rooms on a grid joined by openings in the shared walls.
  A camera sees its own room and, through an opening, a strip of the next one, so an action
  is mostly seen by one camera only (little overlap, like Home-1).
- `open`: one open-plan room with every camera on its walls looking at the middle, so most
  places are seen by several cameras (much overlap, like Home-2).
Everything is in metres, on the floor plane (x, y), z up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..config import fill
from ..errors import VicokdError

LAYOUT_STYLES = ("rooms", "open")
SPOT_KINDS = ("floor", "sofa", "desk", "sink", "door")

CAMERA_HEIGHT = 2.1        # wall-mounted, above head height
CAMERA_TILT_DEG = 14.0     # looking slightly down: the floor fills the lower part of the frame


@dataclass(frozen=True)
class Occluder:
    """A piece of furniture standing in front of one camera, in that camera's frame: it hides
    whatever is farther away behind it (a sofa back, a cabinet, a plant)."""

    depth: float           # m along the optical axis
    lateral: float         # m to the right of the axis (its centre)
    width: float           # m
    height: float          # m above the floor
    colour: tuple[float, float, float]


@dataclass(frozen=True)
class Camera:
    pos: tuple[float, float]
    yaw: float             # direction of the optical axis on the floor, radians
    fov_deg: float         # horizontal field of view
    room: int
    occluders: tuple[Occluder, ...] = ()


@dataclass(frozen=True)
class Spot:
    pos: tuple[float, float]
    kind: str              # one of SPOT_KINDS
    facing: float          # direction the actor faces when acting here, radians
    room: int


@dataclass
class Home:
    name: str
    style: str
    rooms: list[tuple[float, float, float, float]]   # x0, y0, x1, y1
    walls: np.ndarray                                  # [W, 4] segments x1, y1, x2, y2
    openings: list[tuple[tuple[float, float], int, int]]   # centre, room a, room b
    cameras: list[Camera]
    spots: list[Spot]
    phone: tuple[float, float]
    _graph: tuple | None = field(default=None, repr=False)

    def room_of(self, x: float, y: float) -> int:
        for i, (x0, y0, x1, y1) in enumerate(self.rooms):
            if x0 <= x <= x1 and y0 <= y <= y1:
                return i
        return 0

    def random_floor_point(self, rng: np.random.Generator, margin: float = 0.5):
        x0, y0, x1, y1 = self.rooms[int(rng.integers(len(self.rooms)))]
        return (float(rng.uniform(x0 + margin, x1 - margin)),
                float(rng.uniform(y0 + margin, y1 - margin)))

    def path(self, a: tuple[float, float], b: tuple[float, float]) -> np.ndarray:
        """Waypoints [K, 2] of a wall-free walk from a to b (through openings when needed)."""
        ra, rb = self.room_of(*a), self.room_of(*b)
        if ra == rb:
            return np.array([a, b], dtype=float)
        dist, nxt = self._room_graph()
        rooms = [ra]
        while rooms[-1] != rb:
            rooms.append(int(nxt[rooms[-1], rb]))
        points = [a]
        for r0, r1 in zip(rooms[:-1], rooms[1:]):
            points.append(self._opening_between(r0, r1))
        points.append(b)
        return np.array(points, dtype=float)

    def _opening_between(self, r0: int, r1: int):
        for centre, a, b in self.openings:
            if {a, b} == {r0, r1}:
                return centre
        raise ValueError(f"rooms {r0} and {r1} are not adjacent")

    def _room_graph(self):
        # Shortest room-to-room routes (Floyd-Warshall over a handful of rooms).
        if self._graph is None:
            n = len(self.rooms)
            dist = np.full((n, n), np.inf)
            nxt = np.zeros((n, n), dtype=int)
            for i in range(n):
                dist[i, i] = 0
                nxt[i, i] = i
            for _, a, b in self.openings:
                dist[a, b] = dist[b, a] = 1
                nxt[a, b], nxt[b, a] = b, a
            for k in range(n):
                for i in range(n):
                    for j in range(n):
                        if dist[i, k] + dist[k, j] < dist[i, j]:
                            dist[i, j] = dist[i, k] + dist[k, j]
                            nxt[i, j] = nxt[i, k]
            self._graph = (dist, nxt)
        return self._graph


@dataclass(frozen=True)
class Physical:
    """The layout and camera settings of a home beyond its style and camera count (part of a
    `synthetic.homes` block, docs/synthetic.md)."""

    doorway: float                     # m, width of the openings between rooms
    aim: float                         # rooms: 0 = a camera looks at its room's centre, 1 = the home's
    offset: float                      # degrees a camera is turned away from where it looks
    occluders: int                     # furniture pieces in front of each camera
    fov: tuple[float, float]           # range of the cameras' horizontal field of view, degrees
    corner: str                        # rooms: "drawn" exterior corner, or the "outer" one

    @classmethod
    def from_block(cls, block: dict) -> "Physical":
        """From a `synthetic.homes` block (keys left out: the schema's defaults, which are the
        default homes': moderate fields of view keep a person 3 m away at ~45 % of the frame
        height, so coarse pose changes survive the models' 32 px input)."""
        b = fill("synthetic", {"homes": {"_": dict(block)}})["homes"]["_"]
        return cls(doorway=float(b["doorway"]), aim=float(b["aim"]), offset=float(b["offset"]),
                   occluders=int(b["occluders"]), fov=tuple(float(v) for v in b["fov"]),
                   corner=str(b["corner"]))


def build_home(name: str, style: str, views: int, rng: np.random.Generator,
               physical: Physical | None = None,
               extra_rng: np.random.Generator | None = None) -> Home:
    """A floor plan of `style` with `views` cameras; the layout is drawn from `rng`.

    `physical` widens doorways, re-aims, turns and narrows or widens the cameras and puts
    furniture in front of them; what it adds (the side each camera turns to, the occluders) is
    drawn from `extra_rng`, so that `rng` makes the same draws whatever the settings."""
    if style not in LAYOUT_STYLES:
        raise VicokdError(f"config synthetic.layout: home '{name}' has unknown style '{style}' "
                          f"(expected one of {', '.join(LAYOUT_STYLES)})")
    physical = physical or Physical.from_block({})
    if style == "rooms":
        home = _rooms_home(name, views, rng, physical)
    else:
        home = _open_home(name, views, rng, physical)
    if physical.offset or physical.occluders:
        extra_rng = extra_rng if extra_rng is not None else np.random.default_rng(0)
        home.cameras = [_turned_and_furnished(cam, physical, extra_rng) for cam in home.cameras]
    return home


def _turned_and_furnished(cam: Camera, physical: Physical, rng) -> Camera:
    """`cam` turned by `physical.offset` degrees to a random side, with its occluders."""
    side = 1.0 if rng.random() < 0.5 else -1.0
    yaw = cam.yaw + side * math.radians(physical.offset)
    occluders = []
    for _ in range(physical.occluders):
        depth = float(rng.uniform(1.0, 2.2))
        # anywhere across the view at that depth (centre within the field of view)
        half = depth * math.tan(math.radians(cam.fov_deg) / 2)
        hue = float(rng.random())
        colour = tuple(float(c) * 255 for c in _hsv(hue, float(rng.uniform(0.2, 0.7)),
                                                   float(rng.uniform(0.25, 0.75))))
        occluders.append(Occluder(depth, float(rng.uniform(-0.8 * half, 0.8 * half)),
                                  float(rng.uniform(0.6, 1.4)), float(rng.uniform(0.9, 1.5)),
                                  colour))
    return Camera(cam.pos, yaw, cam.fov_deg, cam.room, tuple(occluders))


def _hsv(h, s, v):
    import colorsys
    return colorsys.hsv_to_rgb(h % 1.0, s, v)


def _opening(lo: float, hi: float, centre: float, width: float
             ) -> tuple[float, float, float] | None:
    """(a, b, centre) of an opening of `width` centred near `centre` in a wall from lo to hi,
    moved inside the wall if it sticks out; None when it takes the whole wall (no wall left)."""
    if width >= hi - lo:
        return None
    half = width / 2
    centre = min(max(centre, lo + half), hi - half)
    return centre - half, centre + half, centre


def _rooms_home(name: str, views: int, rng, physical: Physical) -> Home:
    # One room per camera on a grid (2 rows from 3 cameras on), 3.8 m x 3.4 m each, joined by
    # doorways (0.9 m) along a spanning tree: each row is a chain, and the rows meet at one
    # column only, like the rooms off a hall in a flat.
    rows = 2 if views >= 3 else 1
    cols = math.ceil(views / rows)
    rw, rd = 3.8, 3.4
    cells = [(r, c) for r in range(rows) for c in range(cols)][:views]
    rooms = [(c * rw, r * rd, (c + 1) * rw, (r + 1) * rd) for r, c in cells]
    index = {cell: i for i, cell in enumerate(cells)}
    link_col = int(rng.integers(cols - 1)) if rows == 2 and cols > 1 else 0
    gap = physical.doorway
    walls, openings = [], []
    for (r, c), i in index.items():
        x0, y0, x1, y1 = rooms[i]
        if (r, c + 1) in index:                      # east wall: a doorway to the next room
            # on the inner side of the row, away from the cameras' exterior wall, so that a
            # camera does not look straight through it along the row
            yc = float(rng.uniform(y1 - 1.1, y1 - 0.6)) if r == 0 else \
                float(rng.uniform(y0 + 0.6, y0 + 1.1))
            span = _opening(y0, y1, yc, gap)
            if span is not None:
                yc = span[2]
                walls += _wall_parts((x1, y0, x1, span[0]), (x1, span[1], x1, y1))
            openings.append(((x1, yc), i, index[(r, c + 1)]))
        else:
            walls.append((x1, y0, x1, y1))
        if (r + 1, c) in index and c == link_col:    # north wall: the one doorway between rows
            xc = float(rng.uniform(x0 + 0.8, x1 - 0.8))
            span = _opening(x0, x1, xc, gap)
            if span is not None:
                xc = span[2]
                walls += _wall_parts((x0, y1, span[0], y1), (span[1], y1, x1, y1))
            openings.append(((xc, y1), i, index[(r + 1, c)]))
        else:
            walls.append((x0, y1, x1, y1))
        if (r, c - 1) not in index:
            walls.append((x0, y0, x0, y1))
        if (r - 1, c) not in index:
            walls.append((x0, y0, x1, y0))
    cameras = []
    # what `aim` turns the cameras towards: the middle of the whole home
    hx = (min(r[0] for r in rooms) + max(r[2] for r in rooms)) / 2
    hy = (min(r[1] for r in rooms) + max(r[3] for r in rooms)) / 2
    for i, (x0, y0, x1, y1) in enumerate(rooms):
        # A corner of the room on an exterior side, looking across the room's diagonal,
        # so the camera also sees through the opening next to it now and then.
        r, c = cells[i]
        cy = y0 + 0.1 if r == 0 else y1 - 0.1
        cx = x0 + 0.1 if rng.random() < 0.5 else x1 - 0.1
        if physical.corner == "outer":      # the corner farthest from the home's middle
            cx = x0 + 0.1 if abs(x0 - hx) > abs(x1 - hx) else x1 - 0.1
        tx, ty = (x0 + x1) / 2, (y0 + y1) / 2
        if physical.aim:
            tx, ty = tx + physical.aim * (hx - tx), ty + physical.aim * (hy - ty)
        yaw = math.atan2(ty - cy, tx - cx) + float(rng.normal(0, 0.12))
        cameras.append(Camera((cx, cy), yaw, float(rng.uniform(*physical.fov)), i))
    spots = _spots(rooms, rng, per_room=[3] * len(rooms))
    phone = _inside(rooms[int(rng.integers(len(rooms)))], rng)
    return Home(name, "rooms", rooms, np.array(walls, dtype=float), openings, cameras, spots,
                phone)


def _open_home(name: str, views: int, rng, physical: Physical) -> Home:
    # One open-plan room, cameras spread around its walls, all aimed near the middle; plus a
    # small side room (entrance, bathroom) behind a doorway that no camera looks into.
    w, d = 6.6, 5.0     # a living-dining room; the far end stays within ~7 m of a camera
    sw, sd = 2.6, 2.8
    yd = float(rng.uniform(0.8, sd - 0.8))
    span = _opening(0.0, sd, yd, physical.doorway)
    if span is not None:
        yd = span[2]
        door = _wall_parts((w, 0, w, span[0]), (w, span[1], w, d))
    else:
        door = [(w, sd, w, d)]
    rooms = [(0.0, 0.0, w, d), (w, 0.0, w + sw, sd)]
    walls = [(0, 0, w, 0), *door, (w, d, 0, d),
             (0, d, 0, 0), (w, 0, w + sw, 0), (w + sw, 0, w + sw, sd), (w, sd, w + sw, sd)]
    perim = 2 * (w + d)
    start = float(rng.uniform(0, perim))
    cameras = []
    for k in range(views):
        s = (start + k * perim / views + rng.normal(0, 0.4)) % perim
        cx, cy = _perimeter_point(s, w, d, inset=0.1)
        tx = w / 2 + float(rng.normal(0, 0.6))
        ty = d / 2 + float(rng.normal(0, 0.5))
        cameras.append(Camera((cx, cy), math.atan2(ty - cy, tx - cx),
                              float(rng.uniform(*physical.fov)), 0))
    spots = _spots(rooms, rng, per_room=[7, 2])
    phone = _inside(rooms[0], rng)
    return Home(name, "open", rooms, np.array(walls, dtype=float), [((w, yd), 0, 1)], cameras,
                spots, phone)


def _wall_parts(*segments) -> list[tuple]:
    """The segments that have a length (an opening at a wall's end leaves none there)."""
    return [seg for seg in segments if math.hypot(seg[2] - seg[0], seg[3] - seg[1]) > 1e-9]


def _perimeter_point(s, w, d, inset):
    if s < w:
        return s, inset
    s -= w
    if s < d:
        return w - inset, s
    s -= d
    if s < w:
        return w - s, d - inset
    return inset, d - (s - w)


def _inside(room, rng, margin=0.6):
    x0, y0, x1, y1 = room
    return float(rng.uniform(x0 + margin, x1 - margin)), float(rng.uniform(y0 + margin, y1 - margin))


def _spots(rooms, rng, per_room: list[int]) -> list[Spot]:
    # Every home has at least one of each special place; the rest is open floor.
    room_of_spot = [r for r, n in enumerate(per_room) for _ in range(n)]
    n = len(room_of_spot)
    kinds = (["sink", "desk", "sofa", "door", "sofa"] + ["floor"] * max(0, n - 5))[:n]
    order = rng.permutation(n)
    spots = []
    for j, k in enumerate(order):
        room = room_of_spot[j]
        x0, y0, x1, y1 = rooms[room]
        kind = kinds[k]
        if kind == "door":
            # Against a wall, facing it (knocking on a door or a cupboard).
            side = int(rng.integers(4))
            x, y = _inside(rooms[room], rng, 0.9)
            x, y, facing = [(x, y0 + 0.35, -math.pi / 2), (x1 - 0.35, y, 0.0),
                            (x, y1 - 0.35, math.pi / 2), (x0 + 0.35, y, math.pi)][side]
        else:
            x, y = _inside(rooms[room], rng, 0.7)
            facing = float(rng.uniform(-math.pi, math.pi))
        spots.append(Spot((x, y), kind, facing, room))
    return spots


# ----------------------------------------------------------------------------- geometry

def camera_intrinsics(cam: Camera, size: int) -> tuple[float, float, float]:
    """Focal length in pixels, principal point x, and the image row of the horizon."""
    f = (size / 2) / math.tan(math.radians(cam.fov_deg) / 2)
    y_horizon = size / 2 - f * math.tan(math.radians(CAMERA_TILT_DEG))
    return f, size / 2, y_horizon


def to_camera(cam: Camera, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Depth along the optical axis and lateral offset (to the right) of floor points [..., 2]."""
    ax, ay = math.cos(cam.yaw), math.sin(cam.yaw)
    rx, ry = math.sin(cam.yaw), -math.cos(cam.yaw)
    dx = xy[..., 0] - cam.pos[0]
    dy = xy[..., 1] - cam.pos[1]
    return dx * ax + dy * ay, dx * rx + dy * ry


def project(cam: Camera, size: int, xy: np.ndarray, z: np.ndarray):
    """Pixel coordinates (x, y) and depth of 3-D points (floor xy [..., 2], height z [...])."""
    f, cx, yh = camera_intrinsics(cam, size)
    depth, lateral = to_camera(cam, xy)
    safe = np.maximum(depth, 1e-3)
    return cx + f * lateral / safe, yh + f * (CAMERA_HEIGHT - z) / safe, depth


def walls_crossed(walls: np.ndarray, p: np.ndarray, q: tuple[float, float] | np.ndarray) -> np.ndarray:
    """How many wall segments the straight line from each point p [N, 2] to q crosses."""
    q = np.broadcast_to(np.asarray(q, dtype=float), p.shape)
    p1, p2 = p[:, None, :], q[:, None, :]
    w1, w2 = walls[None, :, 0:2], walls[None, :, 2:4]

    def cross(o, a, b):
        return (a[..., 0] - o[..., 0]) * (b[..., 1] - o[..., 1]) - \
               (a[..., 1] - o[..., 1]) * (b[..., 0] - o[..., 0])

    d1, d2 = cross(w1, w2, p1), cross(w1, w2, p2)
    d3, d4 = cross(p1, p2, w1), cross(p1, p2, w2)
    hit = (d1 * d2 < 0) & (d3 * d4 < 0)
    return hit.sum(axis=1)
