"""Did the model change a segment's sound? The measure `stitch` uses to pick each segment's audio."""

from __future__ import annotations

import math
from array import array
from operator import mul, sub
from pathlib import Path

import av

from wanedit.segments.media import open_input

# audio_changed: mono 16 kHz PCM in 20 ms windows, each described by its level (dB of full scale) and
# its RMS frequency (the square root of the spectrum's second moment, from the energy of the first
# difference: a pure tone of f Hz gives f). Lossy re-encoding, resampling and a few ms of encoder delay
# move neither much; a different sound moves the level where one is silent and the other not, or the
# frequency where both sound.
COMPARE_RATE = 16000
WINDOW = 320
MAX_LAG_WINDOWS = 3  # alignment searched within +-60 ms
SILENT_DB = -60.0
LOUD_DB = -40.0
LEVEL_CHANGED_DB = 4.0  # mean level difference
FREQUENCY_CHANGED_OCTAVES = 0.2  # median difference where both are loud...
LOUD_SHARE = 0.25  # ...over at least this share of the windows


def audio_changed(edited: Path, original: Path) -> bool:
    """Whether the edited segment's sound differs from the original's (see the measure above).

    An edited segment without audio did not change it (there is nothing to use instead); an original
    without audio compares as silence, so sound generated for a silent clip counts as changed.
    """
    new = _features(edited)
    if new is None:
        return False
    old = _features(original) or [(SILENT_DB, 0.0)] * len(new)
    count = min(len(new), len(old))
    if count == 0:
        return False
    best: tuple[float, int] = (math.inf, 0)
    for lag in range(-MAX_LAG_WINDOWS, MAX_LAG_WINDOWS + 1):
        pairs = [(new[i], old[i + lag]) for i in range(count) if 0 <= i + lag < len(old)]
        if pairs:
            level = sum(min(abs(a[0] - b[0]), 40.0) for a, b in pairs) / len(pairs)
            best = min(best, (level, lag))
    level, lag = best
    if level > LEVEL_CHANGED_DB:
        return True
    octaves = sorted(
        abs(math.log2(a[1] / b[1]))
        for i, a in enumerate(new[:count])
        if 0 <= i + lag < len(old)
        for b in [old[i + lag]]
        if a[0] > LOUD_DB and b[0] > LOUD_DB and a[1] > 0 and b[1] > 0
    )
    return len(octaves) >= LOUD_SHARE * count and octaves[len(octaves) // 2] > FREQUENCY_CHANGED_OCTAVES


def _features(path: Path) -> list[tuple[float, float]] | None:
    """(level dB, RMS frequency Hz) per 20 ms window of the file's audio as mono 16 kHz, or None."""
    with open_input(path) as ic:
        if not ic.streams.audio:
            return None
        resampler = av.AudioResampler(format="s16", layout="mono", rate=COMPARE_RATE)
        features: list[tuple[float, float]] = []
        pending = array("h")
        for frame in ic.decode(ic.streams.audio[0]):
            for out in resampler.resample(frame):
                pending.frombytes(bytes(out.planes[0])[: 2 * out.samples])
                while len(pending) >= WINDOW:
                    features.append(_window(pending[:WINDOW]))
                    del pending[:WINDOW]
        return features


def _window(samples: array[int]) -> tuple[float, float]:
    energy = sum(map(mul, samples, samples))
    if energy == 0:
        return SILENT_DB, 0.0
    steps = list(map(sub, samples[1:], samples[:-1]))
    level = max(SILENT_DB, 10 * math.log10(energy / len(samples) / 32768**2))
    frequency = COMPARE_RATE / (2 * math.pi) * math.sqrt(sum(map(mul, steps, steps)) / energy)
    return level, frequency
