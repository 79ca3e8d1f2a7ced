"""What the actor does in one sequence: a timeline of actions (the labels) and, per video
frame, the body's position and pose, plus the sound events the microphones will hear.

The actor walks between places in the home and acts there (sits down at the desk and types,
washes dishes at the sink, knocks on a door, waves, jumps...); a phone rings and the actor
coughs at times of their own, over whatever else is going on (multi-label frames).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .layout import Home

# Which actions are visible and which are mostly heard. A "clear" action changes the body's
# coarse shape or position (arms above the head, height drops, the body moves); a "subtle"
# one is a small hand movement or no movement at all, but has a distinct sound.
CLEAR = ("Walk", "SitDown", "StandUp", "Wave", "Bend", "Jump", "Stretch", "Vacuum")
SUBTLE = ("Clap", "Knock", "Typing", "PhoneRing", "WashDishes", "Cough")
KNOWN_CLASSES = CLEAR + SUBTLE
# A clear gesture is now and then made small (a little wave, a shallow bend).
SMALL_GESTURE_P = {"Wave": 0.15, "Bend": 0.15, "Jump": 0.15, "Stretch": 0.15}

# Tasks the planner schedules; the first task of sequence i is TASK_CYCLE[i % len], so that
# every class appears in every home of at least len(TASK_CYCLE) sequences.
TASK_CYCLE = ("Wave", "Typing", "Bend", "Knock", "Jump", "WashDishes", "Stretch", "PhoneRing",
              "Sit", "Clap", "Vacuum", "Cough")
BODY_TASKS = ("Wave", "Typing", "Bend", "Knock", "Jump", "WashDishes", "Stretch", "Sit", "Clap",
              "Vacuum")
TASK_SPOT = {"Typing": "desk", "Knock": "door", "WashDishes": "sink", "Sit": "sofa"}
DURATION = {  # seconds, drawn uniformly
    "Wave": (1.5, 3.5), "Bend": (1.6, 3.0), "Jump": (1.6, 3.2), "Stretch": (2.0, 4.0),
    "Clap": (1.5, 3.5), "Knock": (1.5, 3.0), "WashDishes": (3.0, 7.0), "Vacuum": (3.0, 7.0),
    "Typing": (3.0, 7.0), "SitDown": (1.0, 1.8), "StandUp": (1.0, 1.6), "Rest": (1.5, 4.0),
    "Cough": (0.6, 1.8), "PhoneRing": (2.0, 5.0),
}
REST_HANDS = np.array([[0.06, 0.03, -0.6], [0.06, 0.03, -0.6]])   # (outward, forward, up) from the shoulder
LAP_HANDS = np.array([[-0.06, 0.32, -0.42], [-0.06, 0.32, -0.42]])
STAY_P = 0.25              # share of sequences in which the actor stays in one place
MIN_WALK_LABEL = 1.0       # shorter moves (a step or two) are not labelled Walk


@dataclass
class Sound:
    kind: str              # class name (or "Footstep", "Thud")
    start: float
    end: float
    source: str            # "actor" (moves with the body) or "phone" (fixed place)
    amp: float = 1.0


@dataclass
class Plan:
    """One sequence's script. Per-frame arrays have length `frames` (video frames)."""

    duration: float
    fps: float
    frames: int
    tricks: list[dict] = field(default_factory=list)     # {labels, start, end, subtle}
    sounds: list[Sound] = field(default_factory=list)
    x: np.ndarray = None
    y: np.ndarray = None
    yaw: np.ndarray = None
    seat: np.ndarray = None        # 0 standing .. 1 seated
    lean: np.ndarray = None        # 0 upright .. 1 bent forward
    lift: np.ndarray = None        # m above the floor (jumps)
    crouch: np.ndarray = None      # m the hips drop (before and after a jump)
    phase: np.ndarray = None       # stride phase, radians
    stride: np.ndarray = None      # stride amplitude, 0 when standing
    hands: np.ndarray = None       # [F, 2, 3]: left, right hand from its shoulder
    head_dz: np.ndarray = None


class _Planner:
    def __init__(self, home: Home, rng: np.random.Generator, duration: float, fps: float,
                 classes: list[str]):
        self.home, self.rng, self.fps = home, rng, fps
        self.F = int(round(duration * fps))
        self.D = self.F / fps
        self.classes = set(classes)
        F = self.F
        self.p = Plan(self.D, fps, F, x=np.zeros(F), y=np.zeros(F), yaw=np.zeros(F),
                      seat=np.zeros(F), lean=np.zeros(F), lift=np.zeros(F), crouch=np.zeros(F),
                      phase=np.zeros(F), stride=np.zeros(F),
                      hands=np.broadcast_to(REST_HANDS, (F, 2, 3)).copy(), head_dz=np.zeros(F))
        self.t = 0.0
        self.seated = False

    # -- helpers
    def frames(self, t0: float, t1: float) -> np.ndarray:
        i0 = min(self.F, max(0, math.ceil(t0 * self.fps - 1e-9)))
        i1 = min(self.F, max(0, math.ceil(t1 * self.fps - 1e-9)))
        return np.arange(i0, i1)

    def hold(self, t0: float, x: float, y: float, yaw: float) -> None:
        """From t0 on, the body stays at (x, y) facing yaw, seated or not (later segments overwrite)."""
        i = self.frames(t0, self.D + 1)
        p = self.p
        p.x[i], p.y[i], p.yaw[i] = x, y, yaw
        p.seat[i] = 1.0 if self.seated else 0.0
        p.phase[i], p.stride[i] = 0.0, 0.0
        p.hands[i] = LAP_HANDS if self.seated else REST_HANDS

    def label(self, name: str, t0: float, t1: float, subtle: bool) -> None:
        t1 = min(t1, self.D)
        if name in self.classes and t1 - t0 >= 0.3 and t0 < self.D:
            self.p.tricks.append({"labels": [name], "start": round(t0, 2), "end": round(t1, 2),
                                  "subtle": bool(subtle)})

    def envelope(self, u: np.ndarray, ramp: float) -> np.ndarray:
        """0 at both ends of a segment, 1 in the middle; `ramp` is the rise, as a share of it."""
        e = np.minimum(1.0, np.minimum(u, 1 - u) / max(ramp, 1e-6))
        return 0.5 - 0.5 * np.cos(np.pi * np.clip(e, 0, 1))

    def local(self, t0, t1):
        i = self.frames(t0, t1)
        t = i / self.fps
        return i, t - t0, (t - t0) / max(t1 - t0, 1e-6)

    # -- the schedule
    def run(self, first_task: str) -> Plan:
        rng, home = self.rng, self.home
        spot = home.spots[int(rng.integers(len(home.spots)))]
        if rng.random() < 0.5:
            # often the actor is already where the first task happens (short sequences
            # would otherwise be mostly walking)
            want = TASK_SPOT.get(first_task, "floor")
            spots = [s for s in home.spots if s.kind == want] or home.spots
            spot = spots[int(rng.integers(len(spots)))]
        self.spot = spot
        self.pos = np.array(spot.pos, dtype=float)
        self.yaw = spot.facing
        self.seated = spot.kind in ("sofa", "desk") and rng.random() < 0.3
        self.hold(0.0, *self.pos, self.yaw)
        self.t = float(rng.uniform(0.0, 1.0))
        overlays = []
        task = first_task
        if task in ("PhoneRing", "Cough"):
            overlays.append(task)
            task = None
        for kind, p in (("PhoneRing", 0.3), ("Cough", 0.3)):
            if rng.random() < p:
                overlays.append(kind)
        # Now and then the actor stays where the first task is done (no walking about).
        self.stay = rng.random() < STAY_P
        while self.t < self.D - 0.8:
            if task is None:
                task = self.next_task()
            self.do(task)
            task = None
            self.t += float(rng.uniform(0.2, 1.2))
        for kind in overlays:
            self.overlay(kind)
        if len(self.p.tricks) < 2:   # every sequence has at least two actions
            self.overlay("Cough" if "Cough" in self.classes else "PhoneRing")
        if len(self.p.tricks) < 2:
            self.overlay("PhoneRing")
        self.p.tricks.sort(key=lambda tr: (tr["start"], tr["end"]))
        return self.p

    def next_task(self) -> str:
        tasks = BODY_TASKS
        if self.stay and self.spot is not None:
            tasks = [t for t in BODY_TASKS if TASK_SPOT.get(t, "floor") in ("floor", self.spot.kind)]
        return tasks[int(self.rng.integers(len(tasks)))]

    def do(self, task: str) -> None:
        rng = self.rng
        want = TASK_SPOT.get(task, "floor")
        here_ok = want == "floor" and not self.seated and (self.stay or rng.random() < 0.4)
        here_ok = here_ok or (self.stay and self.spot is not None and self.spot.kind == want)
        if not here_ok:
            spots = [s for s in self.home.spots if s.kind == want] or self.home.spots
            if want == "floor" and rng.random() < 0.7:   # gestures mostly in the same room
                room = self.home.room_of(*self.pos)
                spots = [s for s in self.home.spots if s.room == room] or spots
            spot = spots[int(rng.integers(len(spots)))]
            if self.seated:
                self.stand_up()
            self.walk_to(np.array(spot.pos), spot.facing if want != "floor" else None)
            self.spot = spot
            self.turn_to(spot.facing if want != "floor" else float(rng.uniform(-np.pi, np.pi)))
        elif self.seated:
            self.stand_up()
        if task == "Sit" or task == "Typing":
            self.sit_down()
            inner = "Typing" if task == "Typing" else "Rest"
            self.gesture(inner)
            if rng.random() < 0.75:
                self.stand_up()
        else:
            self.gesture(task)

    def turn_to(self, yaw: float) -> None:
        self.yaw = yaw
        self.hold(self.t, *self.pos, yaw)

    def walk_to(self, target: np.ndarray, final_yaw: float | None) -> None:
        rng, p = self.rng, self.p
        pts = self.home.path(tuple(self.pos), tuple(target))
        seg = np.diff(pts, axis=0)
        lengths = np.hypot(seg[:, 0], seg[:, 1])
        total = float(lengths.sum())
        if total < 0.05:
            return
        speed = float(rng.uniform(0.9, 1.35))
        t0, t1 = self.t, self.t + total / speed
        i, dt, _ = self.local(t0, t1)
        s = np.minimum(dt * speed, total)
        cum = np.concatenate([[0.0], np.cumsum(lengths)])
        p.x[i] = np.interp(s, cum, pts[:, 0])
        p.y[i] = np.interp(s, cum, pts[:, 1])
        k = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1)
        p.yaw[i] = np.arctan2(seg[k, 1], seg[k, 0])
        p.phase[i] = s / 0.7 * np.pi            # one step per 0.7 m
        p.stride[i] = 1.0
        p.seat[i] = 0.0
        if t1 - t0 >= MIN_WALK_LABEL:
            self.label("Walk", t0, t1, subtle=False)
        self.footsteps(t0, min(t1, self.D), speed / 0.7)
        self.pos = target.astype(float)
        self.yaw = float(np.arctan2(seg[-1, 1], seg[-1, 0]))
        self.t = t1
        self.hold(t1, *self.pos, self.yaw)

    def footsteps(self, t0, t1, rate, amp=0.25):
        t = t0 + 0.5 / rate
        while t < t1:
            self.p.sounds.append(Sound("Footstep", t, t + 0.12, "actor", amp))
            t += 1.0 / rate

    def sit_down(self) -> None:
        if self.seated:
            return
        rng, p = self.rng, self.p
        d = float(rng.uniform(*DURATION["SitDown"]))
        t0, t1 = self.t, self.t + d
        i, _, u = self.local(t0, t1)
        sm = 0.5 - 0.5 * np.cos(np.pi * u)
        p.seat[i] = sm
        p.lean[i] = 0.35 * np.sin(np.pi * u)
        p.hands[i] = REST_HANDS + sm[:, None, None] * (LAP_HANDS - REST_HANDS)
        self.label("SitDown", t0, t1, subtle=False)
        self.seated = True
        self.t = t1
        self.hold(t1, *self.pos, self.yaw)

    def stand_up(self) -> None:
        if not self.seated:
            return
        rng, p = self.rng, self.p
        d = float(rng.uniform(*DURATION["StandUp"]))
        t0, t1 = self.t, self.t + d
        i, _, u = self.local(t0, t1)
        sm = 0.5 + 0.5 * np.cos(np.pi * u)
        p.seat[i] = sm
        p.lean[i] = 0.45 * np.sin(np.pi * u)
        p.hands[i] = REST_HANDS + sm[:, None, None] * (LAP_HANDS - REST_HANDS)
        self.label("StandUp", t0, t1, subtle=False)
        self.seated = False
        self.t = t1
        self.hold(t1, *self.pos, self.yaw)

    def gesture(self, kind: str) -> None:
        rng, p = self.rng, self.p
        d = float(rng.uniform(*DURATION[kind]))
        t0, t1 = self.t, self.t + d
        i, dt, u = self.local(t0, t1)
        small = rng.random() < SMALL_GESTURE_P.get(kind, 0.0)
        amp = float(rng.uniform(0.25, 0.4)) if small else float(rng.uniform(0.85, 1.1))
        env = self.envelope(u, 0.2)[:, None]
        h = p.hands[i].copy()
        if kind == "Wave":
            side = int(rng.integers(2))
            f = float(rng.uniform(1.5, 2.5))
            # the hand well above the head, swinging ~0.4 m: a few pixels even at 32 px
            up = np.array([0.2, 0.1, 0.05 + 0.5 * amp])
            target = up + np.array([0.2 * amp, 0, 0]) * np.sin(2 * np.pi * f * dt)[:, None]
            h[:, side] = h[:, side] + env * (target - h[:, side])
        elif kind == "Stretch":
            sway = 0.08 * np.sin(2 * np.pi * 0.4 * dt)[:, None]
            target = np.array([0.1 + 0.3 * (1 - amp), 0.0, -0.1 + 0.72 * amp])
            for side in (0, 1):
                h[:, side] = h[:, side] + env * (target + sway * np.array([1, 0, 0]) - h[:, side])
        elif kind == "Bend":
            p.lean[i] = amp * self.envelope(u, 0.3)
        elif kind == "Jump":
            n = max(1, int(d / float(rng.uniform(0.8, 1.1))))
            q = (u * n) % 1.0
            height = 0.38 * amp
            air = (q >= 0.3) & (q < 0.8)
            p.lift[i] = np.where(air, height * np.sin(np.pi * (q - 0.3) / 0.5), 0.0)
            p.crouch[i] = np.where(q < 0.3, 0.22 * amp * np.sin(np.pi * q / 0.3),
                                   np.where(q >= 0.8, 0.15 * amp * np.sin(np.pi * (q - 0.8) / 0.2), 0.0))
            p.lean[i] = p.crouch[i] * 1.2
            arms = np.where(air, np.sin(np.pi * (q - 0.3) / 0.5), 0.0)[:, None]
            for side in (0, 1):
                h[:, side] = h[:, side] + arms * (np.array([0.2, 0.1, 0.1]) - h[:, side])
            for k in range(n):
                land = t0 + (k + 0.8) * d / n
                if land < self.D:
                    p.sounds.append(Sound("Thud", land, land + 0.25, "actor", amp))
        elif kind == "Clap":
            f = float(rng.uniform(2.0, 3.5))
            apart = 0.5 - 0.5 * np.cos(2 * np.pi * f * dt)
            target = np.stack([-0.16 + 0.12 * apart, 0.25 + 0 * apart, -0.3 + 0 * apart], axis=1)
            for side in (0, 1):
                h[:, side] = h[:, side] + env * (target - h[:, side])
            # the sound of each clap, when the hands meet
            k = np.arange(1, int(d * f) + 1)
            for tc in t0 + k / f:
                if tc < min(t1, self.D) - 0.05:
                    p.sounds.append(Sound("ClapHit", tc, tc + 0.08, "actor", amp))
        elif kind == "Knock":
            side = 1
            target = np.array([0.0, 0.32, -0.08]) + \
                np.array([0, 0.04, 0]) * np.sin(2 * np.pi * 4.0 * dt)[:, None]
            h[:, side] = h[:, side] + env * (target - h[:, side])
        elif kind == "WashDishes":
            jit = 0.03 * np.sin(2 * np.pi * 2.7 * dt)[:, None] * np.array([1, 1, 0])
            target = np.array([-0.08, 0.36, -0.36]) + jit
            for side in (0, 1):
                h[:, side] = h[:, side] + env * (target - h[:, side])
        elif kind == "Typing":
            jit = 0.012 * np.sin(2 * np.pi * 6.0 * dt)[:, None] * np.array([0, 0, 1])
            h = LAP_HANDS + jit[:, None, :] + np.array([0, 0.08, 0.08])
        elif kind == "Vacuum":
            sweep = 0.65 * np.sin(2 * np.pi * 0.33 * dt) * env[:, 0]   # back where it began
            fx, fy = math.cos(self.yaw), math.sin(self.yaw)
            x = self.pos[0] + fx * sweep
            y = self.pos[1] + fy * sweep
            # keep the sweep inside the room the actor is in
            x0, y0, x1, y1 = self.home.rooms[self.home.room_of(*self.pos)]
            p.x[i] = np.clip(x, x0 + 0.3, x1 - 0.3)
            p.y[i] = np.clip(y, y0 + 0.3, y1 - 0.3)
            p.phase[i] = np.cumsum(np.abs(np.diff(sweep, prepend=sweep[:1]))) / 0.5 * np.pi
            p.stride[i] = 0.6
            target = np.array([0.1, 0.45, -0.42])
            h[:, 1] = h[:, 1] + env * (target - h[:, 1])
        elif kind == "Rest":
            pass
        p.hands[i] = h
        if kind in KNOWN_CLASSES:
            self.label(kind, t0, t1, subtle=kind in SUBTLE or small)
            if kind in ("Knock", "WashDishes", "Typing", "Vacuum"):
                p.sounds.append(Sound(kind, t0, min(t1, self.D), "actor", 1.0))
        self.t = t1
        self.hold(t1, *self.pos, self.yaw)

    def overlay(self, kind: str) -> None:
        """A phone ring or a cough at a random time, over whatever the body is doing."""
        rng, p = self.rng, self.p
        d = min(float(rng.uniform(*DURATION[kind])), self.D * 0.5)
        t0 = float(rng.uniform(0, max(self.D - d, 0.01)))
        t1 = t0 + d
        self.label(kind, t0, t1, subtle=True)
        p.sounds.append(Sound(kind, t0, min(t1, self.D), "phone" if kind == "PhoneRing" else "actor",
                              float(rng.uniform(0.8, 1.1))))
        if kind == "Cough":
            i, dt, u = self.local(t0, t1)
            p.head_dz[i] = -0.04 * np.abs(np.sin(2 * np.pi * 1.5 * dt))


def plan_sequence(home: Home, rng: np.random.Generator, duration: float, fps: float,
                  classes: list[str], index: int) -> Plan:
    """The script of sequence number `index` of a home, drawn from its own random stream."""
    return _Planner(home, rng, duration, fps, classes).run(TASK_CYCLE[index % len(TASK_CYCLE)])
