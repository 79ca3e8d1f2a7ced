"""Drawing the camera videos: per-camera backgrounds, the actor's body as capsules (head,
torso, limbs) and the rolling ball, with a z-buffer, lighting and pixel noise.

Everything is vectorised over frames: a background bank (a few lighting levels x a few noise
patterns) is gathered per frame, and each body part is rasterised for a chunk of frames at
once inside its own bounding box, so the cost is a few dozen numpy calls per chunk.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from .layout import CAMERA_HEIGHT, Camera, Home, camera_intrinsics, project, walls_crossed
from .plan import Plan

VISIBLE_SHARE = 0.3        # a body counts as visible when >= 30 % of its box is in the frame
CHUNK = 64                 # frames rasterised together
NOISE_PATTERNS = 5
LIGHT_LEVELS = 8

# Body parts: joint a, joint b, radius (m), colour slot. Sizes are a little stocky on purpose:
# limbs must still cover a pixel or so at the models' 32 px input.
JOINTS = ("pelvis", "neck", "head", "hair", "sh_l", "sh_r", "el_l", "el_r", "ha_l", "ha_r",
          "hip_l", "hip_r", "kn_l", "kn_r", "ft_l", "ft_r")
J = {name: k for k, name in enumerate(JOINTS)}
PARTS = (
    ("hip_l", "kn_l", 0.09, "legs"), ("kn_l", "ft_l", 0.085, "legs"),
    ("hip_r", "kn_r", 0.09, "legs"), ("kn_r", "ft_r", 0.085, "legs"),
    ("hip_l", "hip_r", 0.11, "legs"),
    ("pelvis", "neck", 0.17, "shirt"), ("sh_l", "sh_r", 0.09, "shirt"),
    ("sh_l", "el_l", 0.09, "shirt"), ("el_l", "ha_l", 0.085, "skin"),
    ("sh_r", "el_r", 0.09, "shirt"), ("el_r", "ha_r", 0.085, "skin"),
    ("head", "head", 0.13, "skin"), ("hair", "hair", 0.125, "hair"),
)
BALL_RADIUS = 0.2
_PA = np.array([J[a] for a, _, _, _ in PARTS])
_PB = np.array([J[b] for _, b, _, _ in PARTS])
_RADIUS = np.array([r for _, _, r, _ in PARTS])


@dataclass
class Outfit:
    shirt: np.ndarray
    legs: np.ndarray
    skin: np.ndarray
    hair: np.ndarray


def random_outfit(rng: np.random.Generator) -> Outfit:
    def hsv(h, s, v):
        return np.array(colorsys.hsv_to_rgb(h, s, v)) * 255
    skin = hsv(rng.uniform(0.03, 0.09), rng.uniform(0.3, 0.6), rng.uniform(0.45, 0.95))
    return Outfit(hsv(rng.random(), rng.uniform(0.5, 0.95), rng.uniform(0.45, 0.95)),
                  hsv(rng.random(), rng.uniform(0.2, 0.8), rng.uniform(0.15, 0.55)), skin,
                  hsv(rng.uniform(0.02, 0.12), rng.uniform(0.3, 0.8), rng.uniform(0.05, 0.4)))


# ------------------------------------------------------------------------------- skeleton

def skeleton(plan: Plan) -> np.ndarray:
    """World coordinates [F, J, 3] (x, y, z) of the body joints in every frame."""
    F = plan.frames
    s, lean = plan.seat, plan.lean
    side = np.array([-1.0, 1.0])                        # left, right
    body = np.zeros((F, len(JOINTS), 3))                # (lateral right, forward, up)
    hip_h = 0.92 - 0.42 * s - plan.crouch + plan.lift
    a = lean * 1.15 + 0.05 * s                          # torso pitch forward, radians
    tdir = np.stack([np.zeros(F), np.sin(a), np.cos(a)], axis=1)
    pelvis = np.stack([np.zeros(F), -0.12 * lean, hip_h], axis=1)
    neck = pelvis + 0.55 * tdir
    head = neck + 0.2 * tdir + np.stack([np.zeros(F), np.zeros(F), plan.head_dz], axis=1)
    body[:, J["pelvis"]], body[:, J["neck"]], body[:, J["head"]] = pelvis, neck, head
    body[:, J["hair"]] = head + 0.05 * tdir
    for k, name in enumerate(("l", "r")):
        sg = side[k]
        sh = neck + np.array([0.19 * sg, 0.0, -0.04])
        hand = sh + plan.hands[:, k] * np.array([sg, 1.0, 1.0])
        half = np.minimum(np.linalg.norm(hand - sh, axis=1) / 2, 0.3)
        bend = np.sqrt(np.maximum(0.3 ** 2 - half ** 2, 0))[:, None]
        elbow = (sh + hand) / 2 + bend * np.array([0.92 * sg, -0.1, -0.37])
        hip = pelvis + np.array([0.1 * sg, 0.0, 0.0])
        swing = plan.stride * np.sin(plan.phase + (0 if k == 0 else np.pi))
        foot = np.stack([np.full(F, (0.1 + 0.03 * 0) * sg) + 0.02 * sg * s,
                         0.45 * s + 0.28 * swing + 0.12 * lean,
                         plan.lift + 0.07 * plan.stride * np.maximum(0, swing)], axis=1)
        # knee: two 0.46 m bones, bent forward in the sagittal plane
        v = foot - hip
        dist = np.linalg.norm(v, axis=1)
        halfl = np.minimum(dist / 2, 0.46)
        bl = np.sqrt(np.maximum(0.46 ** 2 - halfl ** 2, 0))
        n = np.maximum(np.hypot(v[:, 1], v[:, 2]), 1e-6)
        perp = np.stack([np.zeros(F), -v[:, 2] / n, v[:, 1] / n], axis=1)
        knee = (hip + foot) / 2 + bl[:, None] * perp
        # arms swing against the legs when walking
        hand = hand + np.stack([np.zeros(F), -0.18 * swing * (plan.hands[:, k, 2] < -0.5),
                                np.zeros(F)], axis=1)
        body[:, J["sh_" + name]], body[:, J["el_" + name]] = sh, elbow
        body[:, J["ha_" + name]], body[:, J["hip_" + name]] = hand, hip
        body[:, J["kn_" + name]], body[:, J["ft_" + name]] = knee, foot
    fx, fy = np.cos(plan.yaw), np.sin(plan.yaw)
    world = np.empty_like(body)
    world[..., 0] = plan.x[:, None] + body[..., 0] * fy[:, None] + body[..., 1] * fx[:, None]
    world[..., 1] = plan.y[:, None] - body[..., 0] * fx[:, None] + body[..., 1] * fy[:, None]
    world[..., 2] = body[..., 2]
    return world


# ----------------------------------------------------------------------------- backgrounds

def smooth_noise(rng, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1], [size, size], by bilinear upsampling of a coarse grid."""
    g = rng.uniform(-1, 1, (cells + 1, cells + 1))
    u = np.linspace(0, cells, size, endpoint=False)
    i = np.floor(u).astype(int)
    w = u - i
    rows = g[i] * (1 - w)[:, None] + g[i + 1] * w[:, None]
    return rows[:, i] * (1 - w)[None, :] + rows[:, i + 1] * w[None, :]


def camera_background(cam: Camera, size: int, rng: np.random.Generator) -> np.ndarray:
    """A room seen by one camera, float32 [H, W, 3] in 0..255: walls, floor, furniture, window."""
    f, _, yh = camera_intrinsics(cam, size)
    H = W = size
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)

    def hsv(h, s, v):
        return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32) * 255

    wall = hsv(rng.random(), rng.uniform(0.05, 0.35), rng.uniform(0.55, 0.9))
    wall2 = wall * rng.uniform(0.75, 0.92)
    floor = hsv(rng.uniform(0.05, 0.12), rng.uniform(0.2, 0.6), rng.uniform(0.3, 0.7))
    # Floor meets the walls along two lines through a room corner.
    xc = rng.uniform(0.2, 0.8) * W
    y_corner = yh + f * CAMERA_HEIGHT / rng.uniform(4.0, 6.5)
    y_left = yh + f * CAMERA_HEIGHT / rng.uniform(2.0, 4.0)
    y_right = yh + f * CAMERA_HEIGHT / rng.uniform(2.0, 4.0)
    y_floor = np.where(xx < xc, y_corner + (y_left - y_corner) * (xc - xx) / xc,
                       y_corner + (y_right - y_corner) * (xx - xc) / (W - xc))
    img = np.where((xx < xc)[..., None], wall, wall2).astype(np.float32)
    img = img * (1 + 0.06 * smooth_noise(rng, size, 6))[..., None]
    is_floor = yy >= y_floor
    planks = 1 + 0.07 * np.sign(np.sin((xx - xc) * (yy - yh + 3) / (size * 0.9) + rng.uniform(0, 6)))
    fl = floor[None, None] * (planks * (1 + 0.1 * smooth_noise(rng, size, 8)))[..., None]
    img = np.where(is_floor[..., None], fl, img)
    # A window (bright) and a picture or two on the walls.
    for k in range(int(rng.integers(1, 4))):
        w, h = rng.uniform(0.08, 0.25) * W, rng.uniform(0.08, 0.2) * H
        x0 = rng.uniform(0, W - w)
        y0 = rng.uniform(max(0, yh - 0.35 * H), max(1, y_corner - h - 1))
        colour = hsv(0.58, 0.15, 1.0) if k == 0 else hsv(rng.random(), rng.uniform(0.3, 0.9),
                                                            rng.uniform(0.2, 0.9))
        img[int(y0):int(y0 + h), int(x0):int(x0 + w)] = colour
    # Furniture standing on the floor: low wide (sofa, table) and tall narrow (shelf, lamp).
    for _ in range(int(rng.integers(2, 5))):
        depth = rng.uniform(2.0, 5.5)
        base = yh + f * CAMERA_HEIGHT / depth
        tall = rng.random() < 0.4
        h_m = rng.uniform(1.2, 2.0) if tall else rng.uniform(0.4, 0.9)
        w_m = rng.uniform(0.3, 0.6) if tall else rng.uniform(0.8, 2.0)
        h, w = f * h_m / depth, f * w_m / depth
        x0 = rng.uniform(-0.2 * W, W - 0.5 * w)
        colour = hsv(rng.random(), rng.uniform(0.1, 0.7), rng.uniform(0.15, 0.8))
        y0, y1 = int(max(0, base - h)), int(min(H, base))
        x0i, x1i = int(max(0, x0)), int(min(W, x0 + w))
        if y1 > y0 and x1i > x0i:
            img[y0:y1, x0i:x1i] = colour
            img[y0:min(y1, y0 + max(1, int(h * 0.12))), x0i:x1i] = colour * 1.2
    vignette = 1 - 0.25 * (((xx - W / 2) ** 2 + (yy - H / 2) ** 2) / (W * W / 2))
    return np.clip(img * vignette[..., None], 0, 255).astype(np.float32)


def occluder_rects(cam: Camera, size: int) -> list[tuple[int, int, int, int, float]]:
    """Pixel rectangles (x0, y0, x1, y1, depth) of the furniture in front of `cam`: from the
    top of the piece down to where it stands on the floor, clipped to the frame."""
    f, cx, yh = camera_intrinsics(cam, size)
    rects = []
    for occ in cam.occluders:
        x0 = cx + f * (occ.lateral - occ.width / 2) / occ.depth
        x1 = cx + f * (occ.lateral + occ.width / 2) / occ.depth
        y0 = yh + f * (CAMERA_HEIGHT - occ.height) / occ.depth
        y1 = yh + f * CAMERA_HEIGHT / occ.depth
        r = (int(np.clip(round(x0), 0, size)), int(np.clip(round(y0), 0, size)),
             int(np.clip(round(x1), 0, size)), int(np.clip(round(y1), 0, size)))
        if r[2] > r[0] and r[3] > r[1]:
            rects.append((*r, float(occ.depth)))
    return rects


def paint_occluders(background: np.ndarray, cam: Camera) -> np.ndarray:
    """The camera's background with its occluders drawn in (a lighter top edge, as the
    furniture blocks of the background have)."""
    if not cam.occluders:
        return background
    out = background.copy()
    size = background.shape[0]
    for (x0, y0, x1, y1, _), occ in zip(occluder_rects(cam, size), cam.occluders):
        colour = np.array(occ.colour, dtype=np.float32)
        out[y0:y1, x0:x1] = colour
        out[y0:min(y1, y0 + max(1, (y1 - y0) // 10)), x0:x1] = np.clip(colour * 1.2, 0, 255)
    return out


def noise_bank(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """A few sensor-noise patterns, int16 [K, H, W, 3] (`sigma`: grey levels)."""
    return np.round(rng.standard_normal((NOISE_PATTERNS, size, size, 3), dtype=np.float32)
                    * sigma).astype(np.int16)


def lighting(rng: np.random.Generator, frames: int, fps: float,
             level: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame brightness gain [F] and a colour tint [3] of one camera in one sequence:
    a level for the time of day (drawn from `level`), slow drift, and now and then a lamp
    switched on or off."""
    t = np.arange(frames) / fps
    g = rng.uniform(*level) * (1 + 0.05 * np.sin(2 * np.pi * t / rng.uniform(6, 20)
                                                     + rng.uniform(0, 6)))
    if rng.random() < 0.25:
        ts = rng.uniform(0, t[-1] + 1e-6)
        g = g * np.where(t >= ts, rng.choice([0.75, 1.25]), 1.0)
    tint = 1 + rng.uniform(-0.08, 0.08, 3)
    return g.astype(np.float32), tint.astype(np.float32)


# ----------------------------------------------------------------------------- rasterising

def _draw_capsules(video, zbuf, fr, A, B, R, Z, colour):
    """Draw one capsule per listed frame where it is nearer than what is drawn there.

    video [n, H, W, 3] uint8 and zbuf [n, H, W] are the chunk; fr [m] frame indices into it;
    A, B [m, 2] pixel endpoints (x, y), R [m] radius px, Z [m] depth, colour [m, 3] uint8."""
    H, W = zbuf.shape[1:]
    lo = np.floor(np.minimum(A, B) - R[:, None]).astype(int)
    hi = np.ceil(np.maximum(A, B) + R[:, None]).astype(int)
    lo = np.clip(lo, 0, [W - 1, H - 1])
    hi = np.clip(hi, 0, [W - 1, H - 1])
    keep = (hi[:, 0] >= lo[:, 0]) & (hi[:, 1] >= lo[:, 1]) & (R > 0.25)
    if not keep.any():
        return
    fr, A, B, R, Z, colour, lo, hi = (v[keep] for v in (fr, A, B, R, Z, colour, lo, hi))
    ws = int((hi[:, 0] - lo[:, 0]).max()) + 1
    hs = int((hi[:, 1] - lo[:, 1]).max()) + 1
    gx = lo[:, 0:1] + np.arange(ws)                      # [m, ws]
    gy = lo[:, 1:2] + np.arange(hs)                      # [m, hs]
    px = gx[:, None, :] + 0.5
    py = gy[:, :, None] + 0.5
    d = (B - A)[:, :, None, None]
    ax, ay = A[:, 0, None, None], A[:, 1, None, None]
    len2 = np.maximum(d[:, 0] ** 2 + d[:, 1] ** 2, 1e-9)
    t = np.clip(((px - ax) * d[:, 0] + (py - ay) * d[:, 1]) / len2, 0, 1)
    ex = px - (ax + t * d[:, 0])
    ey = py - (ay + t * d[:, 1])
    inside = (ex * ex + ey * ey <= (R * R)[:, None, None]) & \
        (gx <= hi[:, 0:1])[:, None, :] & (gy <= hi[:, 1:2])[:, :, None]
    k, iy, ix = np.nonzero(inside)
    if len(k) == 0:
        return
    f, y, x = fr[k], gy[k, iy], gx[k, ix]
    near = Z[k] < zbuf[f, y, x]
    f, y, x, k = f[near], y[near], x[near], k[near]
    zbuf[f, y, x] = Z[k]
    video[f, y, x] = colour[k]


def _occluded_share(cam, size, x0, y0, x1, y1, depth):
    """[F]: the share of the body's box that the camera's furniture hides (the body farther
    than the piece; overlapping pieces counted once each, so the share is an upper bound)."""
    area = np.maximum(x1 - x0, 1e-9) * np.maximum(y1 - y0, 1e-9)
    hidden = np.zeros_like(area)
    for ox0, oy0, ox1, oy1, od in occluder_rects(cam, size):
        w = np.maximum(np.minimum(x1, ox1) - np.maximum(x0, ox0), 0)
        h = np.maximum(np.minimum(y1, oy1) - np.maximum(y0, oy0), 0)
        hidden += np.where(depth > od, w * h, 0.0)
    return np.minimum(hidden / area, 1.0)


def _box_and_share(x0, y0, x1, y1, size):
    """Clipped normalised box and the share of the box's area inside the frame."""
    area = np.maximum(x1 - x0, 1e-9) * np.maximum(y1 - y0, 1e-9)
    cx0, cy0 = np.clip(x0, 0, size), np.clip(y0, 0, size)
    cx1, cy1 = np.clip(x1, 0, size), np.clip(y1, 0, size)
    share = np.maximum(cx1 - cx0, 0) * np.maximum(cy1 - cy0, 0) / area
    return np.stack([cx0, cy0, cx1, cy1], axis=-1) / size, share


@dataclass
class ViewGeometry:
    """Where the actor and the ball are in one camera, frame by frame (no pixels)."""

    boxes: np.ndarray          # float32 [F, 4], normalised xyxy, NaN when not visible
    visible: np.ndarray        # bool [F]
    object_boxes: np.ndarray   # float32 [F, 4]
    distance: np.ndarray       # actor-to-camera distance, m [F] (for the microphone)
    walls: np.ndarray          # walls between actor and camera [F]
    actor_drawn: np.ndarray    # bool [F]: in line of sight and in front of the camera
    ball_drawn: np.ndarray
    jx: np.ndarray             # joint pixel coordinates [F, J]
    jy: np.ndarray
    part_depth: np.ndarray     # [F, P]
    part_radius: np.ndarray    # [F, P] px
    ball: tuple                # ball centre x, y, radius px, depth [F] each


def view_geometry(home: Home, cam: Camera, joints: np.ndarray, ball_xy: np.ndarray,
                  size: int) -> ViewGeometry:
    """Project the actor and the ball into one camera; decide visibility and true boxes."""
    F = len(joints)
    f_px, _, _ = camera_intrinsics(cam, size)
    jx, jy, jd = project(cam, size, joints[..., :2], joints[..., 2])       # [F, J]
    centre = joints[:, J["pelvis"], :2]
    walls_actor = walls_crossed(home.walls, centre, cam.pos)
    actor_drawn = (walls_actor == 0) & (jd.min(axis=1) > 0.25)
    pdepth = (jd[:, _PA] + jd[:, _PB]) / 2                                    # [F, P]
    prad = f_px * _RADIUS / np.maximum(pdepth, 1e-3)
    bx0 = np.minimum(jx[:, _PA], jx[:, _PB]) - prad
    bx1 = np.maximum(jx[:, _PA], jx[:, _PB]) + prad
    by0 = np.minimum(jy[:, _PA], jy[:, _PB]) - prad
    by1 = np.maximum(jy[:, _PA], jy[:, _PB]) + prad
    box, share = _box_and_share(bx0.min(1), by0.min(1), bx1.max(1), by1.max(1), size)
    if cam.occluders:
        share = share - _occluded_share(cam, size, bx0.min(1), by0.min(1), bx1.max(1),
                                        by1.max(1), jd.mean(axis=1))
    visible = actor_drawn & (share >= VISIBLE_SHARE)
    boxes = np.where(visible[:, None], box, np.nan).astype(np.float32)

    ox, oy, od = project(cam, size, ball_xy, np.full(F, BALL_RADIUS))
    ball_walls = walls_crossed(home.walls, ball_xy, cam.pos)
    ball_drawn = (ball_walls == 0) & (od > 0.3)
    orad = f_px * BALL_RADIUS / np.maximum(od, 1e-3)
    obox, oshare = _box_and_share(ox - orad, oy - orad, ox + orad, oy + orad, size)
    ovis = ball_drawn & (oshare >= VISIBLE_SHARE)
    object_boxes = np.where(ovis[:, None], obox, np.nan).astype(np.float32)
    distance = np.hypot(centre[:, 0] - cam.pos[0], centre[:, 1] - cam.pos[1])
    return ViewGeometry(boxes, visible, object_boxes, distance, walls_actor, actor_drawn,
                        ball_drawn, jx, jy, pdepth, prad, (ox, oy, orad, od))


def render_view(geo: ViewGeometry, outfit: Outfit, ball_roll: np.ndarray,
                ball_colours: np.ndarray, background: np.ndarray, noise: np.ndarray,
                rng: np.random.Generator, fps: float, size: int, light: tuple[float, float],
                occluders: list[tuple[int, int, int, int, float]] = ()) -> np.ndarray:
    """One camera's video, uint8 [F, H, W, 3], drawn from its geometry. `background` shows
    the camera's `occluders` (occluder_rects), which hide what lies behind them."""
    F = len(geo.visible)
    jx, jy, pdepth, prad = geo.jx, geo.jy, geo.part_depth, geo.part_radius
    ox, oy, orad, od = geo.ball
    ball_drawn, actor_drawn = geo.ball_drawn, geo.actor_drawn
    pa, pb = _PA, _PB
    # --- pixels: background bank gathered per frame, then the ball and the body
    gain, tint = lighting(rng, F, fps, light)
    levels = np.linspace(gain.min(), gain.max(), LIGHT_LEVELS) if gain.max() > gain.min() \
        else np.full(LIGHT_LEVELS, gain.min())
    level = np.clip(np.searchsorted(levels, gain), 0, LIGHT_LEVELS - 1)
    lit = background[None] * tint * levels[:, None, None, None]               # [L, H, W, 3]
    bank = np.clip(lit[:, None] + noise[None], 0, 255).astype(np.uint8)        # [L, K, H, W, 3]
    bank = bank.reshape(-1, size, size, 3)
    pick = level * NOISE_PATTERNS + rng.integers(0, NOISE_PATTERNS, F)
    video = bank[pick]
    light = (levels[level][:, None] * tint[None, :])                          # [F, 3]
    colours = {"shirt": outfit.shirt, "legs": outfit.legs, "skin": outfit.skin,
               "hair": outfit.hair}
    for c0 in range(0, F, CHUNK):
        c1 = min(F, c0 + CHUNK)
        chunk = video[c0:c1]
        zbuf = np.full((c1 - c0, size, size), np.inf, dtype=np.float32)
        for x0, y0, x1, y1, depth in occluders:     # nothing behind the furniture is drawn
            zbuf[:, y0:y1, x0:x1] = np.minimum(zbuf[:, y0:y1, x0:x1], depth)
        lt = light[c0:c1]
        fr = np.nonzero(ball_drawn[c0:c1])[0]
        if len(fr):
            g = c0 + fr
            A = np.stack([ox[g], oy[g]], axis=1)
            col = np.clip(ball_colours[0] * lt[fr], 0, 255).astype(np.uint8)
            _draw_capsules(chunk, zbuf, fr, A, A, orad[g], od[g], col)
            # a stripe that turns as the ball rolls
            ang = ball_roll[g]
            d = 0.8 * orad[g, None] * np.stack([np.cos(ang), np.sin(ang)], axis=1)
            col = np.clip(ball_colours[1] * lt[fr], 0, 255).astype(np.uint8)
            _draw_capsules(chunk, zbuf, fr, A - d, A + d, 0.3 * orad[g], od[g] - 0.01, col)
        fr = np.nonzero(actor_drawn[c0:c1])[0]
        if len(fr):
            g = c0 + fr
            for p, (_, _, _, slot) in enumerate(PARTS):
                A = np.stack([jx[g, pa[p]], jy[g, pa[p]]], axis=1)
                B = np.stack([jx[g, pb[p]], jy[g, pb[p]]], axis=1)
                # skin parts a touch nearer, so hands and face sit on top of shirt and hair
                Z = pdepth[g, p] - (0.02 if slot == "skin" else 0.0)
                col = np.clip(colours[slot] * lt[fr], 0, 255).astype(np.uint8)
                _draw_capsules(chunk, zbuf, fr, A, B, prad[g, p], Z, col)
    return video
