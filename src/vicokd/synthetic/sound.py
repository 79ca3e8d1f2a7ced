"""The sounds of a sequence and what each camera's microphone records.

Each audible action has a cue that shows in a 128-bin log-mel fbank over 0.4 s: distinct
tones (phone), harmonic hum plus noise (vacuum), band noise (running water), and rhythms of
short broadband or resonant hits (claps, knocks, key clicks, coughs, footsteps, landings).
Sources are mixed into an "actor" track (sounds made by the body, which moves) and a "phone"
track (a fixed place). Every microphone hears both, attenuated with distance (1/r) and by
each wall in between, over its own background noise and hum.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfilt

from .plan import Plan

SAMPLE_RATE = 16000
WALL_LOSS = 0.4            # amplitude kept per wall between source and microphone
REF_DISTANCE = 1.0         # m at which a source plays at its own level


def _band(rng, n, lo, hi, sr=SAMPLE_RATE):
    """White noise band-passed to [lo, hi] Hz."""
    sos = butter(4, [lo, hi], btype="band", fs=sr, output="sos")
    return sosfilt(sos, rng.standard_normal(n)).astype(np.float32)


def _hit(n, sr, tau):
    return np.exp(-np.arange(n) / (sr * tau)).astype(np.float32)


def _add(track, start, wave):
    i0 = int(round(start * SAMPLE_RATE))
    if i0 >= len(track) or i0 < 0:
        return
    n = min(len(wave), len(track) - i0)
    track[i0:i0 + n] += wave[:n]


def synthesize_tracks(plan: Plan, rng: np.random.Generator, ring: tuple[float, float]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The actor and phone source tracks, float32 [samples] each, for the whole sequence."""
    sr = SAMPLE_RATE
    n = int(round(plan.duration * sr))
    actor = np.zeros(n, np.float32)
    phone = np.zeros(n, np.float32)
    for s in plan.sounds:
        d = max(s.end - s.start, 0.01)
        m = int(d * sr)
        t = np.arange(m) / sr
        a = s.amp
        if s.kind == "Footstep":
            w = 0.25 * a * _hit(m, sr, 0.03) * np.sin(2 * np.pi * rng.uniform(60, 90) * t)
            w[:80] += 0.08 * a * rng.standard_normal(min(80, m))
            _add(actor, s.start, w)
        elif s.kind == "Thud":
            w = 0.7 * a * _hit(m, sr, 0.06) * np.sin(2 * np.pi * rng.uniform(50, 70) * t)
            w += 0.2 * a * _hit(m, sr, 0.015) * rng.standard_normal(m)
            _add(actor, s.start, w)
        elif s.kind == "ClapHit":
            w = 0.7 * a * _hit(m, sr, 0.009) * _band(rng, m, 600, 6000)
            _add(actor, s.start, w)
        elif s.kind == "Knock":
            # groups of 2-4 knocks on wood, a resonance near 200 Hz with a click
            f0 = rng.uniform(170, 260)
            tk = 0.0
            while tk < d - 0.1:
                for _ in range(int(rng.integers(2, 5))):
                    k = int(0.12 * sr)
                    tt = np.arange(k) / sr
                    w = 0.9 * a * _hit(k, sr, 0.025) * np.sin(2 * np.pi * f0 * tt)
                    w += 0.3 * a * _hit(k, sr, 0.003) * rng.standard_normal(k)
                    _add(actor, s.start + tk, w)
                    tk += rng.uniform(0.15, 0.22)
                tk += rng.uniform(0.5, 0.9)
        elif s.kind == "Typing":
            times = np.cumsum(rng.exponential(1 / rng.uniform(7, 11), int(d * 14) + 2))
            for tc in times[times < d - 0.01]:
                k = int(0.006 * sr)
                w = 0.35 * a * _hit(k, sr, 0.0015) * np.diff(rng.standard_normal(k + 1))
                _add(actor, s.start + tc, w.astype(np.float32))
        elif s.kind == "WashDishes":
            env = 0.6 + 0.4 * np.interp(t, np.linspace(0, d, 8), rng.random(8))
            w = 0.22 * a * env * _band(rng, m, 900, 4500)
            for tc in rng.uniform(0, d, int(d * 1.2)):       # dishes clinking
                k = int(0.08 * sr)
                tt = np.arange(k) / sr
                w_c = 0.25 * a * _hit(k, sr, 0.02) * np.sin(2 * np.pi * rng.uniform(2500, 4500) * tt)
                i0 = int(tc * sr)
                w[i0:i0 + k] += w_c[:len(w[i0:i0 + k])]
            _add(actor, s.start, _fade(w, sr))
        elif s.kind == "Vacuum":
            f0 = rng.uniform(110, 160) * (1 - 0.25 * np.exp(-t / 0.4))   # motor spinning up
            ph = 2 * np.pi * np.cumsum(f0) / sr
            w = sum(np.sin(k * ph) / k for k in range(1, 7)).astype(np.float32) * 0.3 * a
            w += 0.25 * a * _band(rng, m, 200, 3000)
            _add(actor, s.start, _fade(w, sr))
        elif s.kind == "Cough":
            tc = 0.0
            while tc < d - 0.15:           # bouts of coughs that fill the labelled span
                k = int(rng.uniform(0.2, 0.35) * sr)
                tt = np.arange(k) / sr
                env = (1 - np.exp(-tt / 0.01)) * np.exp(-tt / 0.09)
                w = 0.8 * a * env * (_band(rng, k, 300, 2500)
                                     + 0.4 * np.sign(np.sin(2 * np.pi * rng.uniform(160, 240) * tt)))
                _add(actor, s.start + tc, w.astype(np.float32))
                tc += k / sr + rng.uniform(0.08, 0.3)
        elif s.kind == "PhoneRing":
            # the home's ringtone: two tones alternating at 20 Hz, 1 s on, 0.6 s off
            on = (t % 1.6) < 1.0
            alt = (np.floor(t * 20) % 2).astype(bool)
            w = np.where(alt, np.sin(2 * np.pi * ring[0] * t), np.sin(2 * np.pi * ring[1] * t))
            _add(phone, s.start, (0.4 * a * on * w).astype(np.float32))
    return actor, phone


def _fade(w, sr, seconds=0.15):
    k = min(int(seconds * sr), len(w) // 2)
    if k > 0:
        ramp = np.linspace(0, 1, k, dtype=np.float32)
        w[:k] *= ramp
        w[-k:] *= ramp[::-1]
    return w


def microphone(actor: np.ndarray, phone: np.ndarray, fps: float, distance: np.ndarray,
               walls: np.ndarray, phone_distance: float, phone_walls: int,
               rng: np.random.Generator, noise_level: float) -> np.ndarray:
    """One camera's recording: the sources attenuated on their way to it, plus its own noise."""
    n = len(actor)
    t_frames = np.arange(len(distance)) / fps
    g_frames = (REF_DISTANCE / np.maximum(distance, 0.5)) * WALL_LOSS ** walls
    g = np.interp(np.arange(n) / SAMPLE_RATE, t_frames, g_frames).astype(np.float32)
    gp = REF_DISTANCE / max(phone_distance, 0.5) * WALL_LOSS ** phone_walls
    # background: pinkish noise (one-pole low-pass of white noise) and a faint mains hum
    bg = sosfilt(butter(1, 1500, fs=SAMPLE_RATE, output="sos"), rng.standard_normal(n))
    hum = np.sin(2 * np.pi * rng.choice([50.0, 60.0]) * np.arange(n) / SAMPLE_RATE + rng.uniform(0, 6))
    out = g * actor + gp * phone + noise_level * bg.astype(np.float32) + 0.003 * hum.astype(np.float32)
    return np.clip(out, -1, 1).astype(np.float32)
