"""What a user can ask of one colorization, and the bounds that every front end shares.

The CLI, the HTTP API and the engine all validate through this module, so a value means the same
everywhere and is refused with the same sentence (docs/DESIGN.md "Options"). Plug-ins keep their own
copies of the bounds (they cannot import the backend); tests check that they agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import BadRequest

# (low, high), both inclusive. Temperature: below 0.01 the annealed mean is already the mode, and 1/T
# overflows float32 near 1e-38 (a silently gray result); above 5 it is the plain mean many times over.
TEMPERATURE = (0.01, 5.0)
VIBRANCY = (0.0, 2.0)           # chroma scale in Lab: 0 = gray, 1 = the model's own colours, 2 = twice as vivid
SAMPLES = (1, 16)
SEED = (0, 2**63 - 1)
REFERENCE_STRENGTH = (0.0, 1.0)
HINT_SIZE = (1, 255)            # side of a colour point's square, in image pixels
MAX_HINT_POINTS = 1000
SCORE_THRESHOLD = (0.05, 1.0)   # detector confidence for instance boxes
MAX_INSTANCES = (1, 16)
BOX_SOURCES = ("auto", "selection", "both")
DEFAULT_HINT_SIZE = 5
DEFAULT_SCORE_THRESHOLD = 0.5
DEFAULT_MAX_INSTANCES = 8       # as Su et al. 2020


def check_number(name: str, value, bounds: tuple, integer: bool = False):
    """value as a float (or int), or BadRequest saying what is allowed. Accepts numbers and numeric strings."""
    low, high = bounds
    kind = "a whole number" if integer else "a number"
    wanted = f"{name} must be {kind} from {_fmt(low)} to {_fmt(high)}"
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        raise BadRequest(f"{wanted}, got {value!r}.") from None
    if not math.isfinite(number):
        raise BadRequest(f"{wanted}, got {value!r} (not a finite number).")
    if integer and number != int(number):
        raise BadRequest(f"{wanted}, got {value!r}.")
    if not low <= number <= high:
        raise BadRequest(f"{wanted}, got {value!r}.")
    return int(number) if integer else number


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class _ComparesArrays:
    """Field-by-field equality for option objects that hold numpy arrays (which have no plain ==)."""

    def __eq__(self, other) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(_same(getattr(self, name), getattr(other, name)) for name in self.__dataclass_fields__)

    __hash__ = None


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    return a == b


@dataclass(frozen=True)
class HintPoint:
    """A colour point: the square of `size` pixels centred at (x, y) should get the chroma of `rgb` (0-255)."""

    x: float
    y: float
    rgb: tuple[int, int, int]
    size: int = DEFAULT_HINT_SIZE


@dataclass(frozen=True, eq=False)
class Guidance(_ComparesArrays):
    """The user's colour hints and reference photo (Zhang et al. 2017 local and global hints)."""

    hint_image: np.ndarray | None = None   # (H, W, 4) RGBA at the image's size: alpha > 0 marks a hint, RGB its colour
    points: tuple[HintPoint, ...] = ()
    reference: np.ndarray | None = None    # a colour photo of any size, (h, w, 3 or 4)
    reference_strength: float = 1.0        # 0: ignore the reference, 1: use it fully

    @property
    def has_local_hints(self) -> bool:
        return self.hint_image is not None or bool(self.points)

    @property
    def has_reference(self) -> bool:
        return self.reference is not None and self.reference_strength > 0

    @property
    def given(self) -> bool:
        return self.has_local_hints or self.has_reference


@dataclass(frozen=True, eq=False)
class InstanceOptions(_ComparesArrays):
    """Instance-aware mode: where object boxes come from and what is returned."""

    boxes: str = "auto"                          # auto (detector) | selection | both
    user_boxes: tuple[tuple[int, int, int, int], ...] = ()  # (x, y, width, height) in image pixels
    selection: np.ndarray | None = None          # (H, W) mask; each connected region becomes an instance
    score_threshold: float = DEFAULT_SCORE_THRESHOLD
    max_instances: int = DEFAULT_MAX_INSTANCES
    instance_layers: bool = False                # also return each instance's own colorization


@dataclass(frozen=True)
class ColorizeOptions:
    mode: str = "full"                 # full | instance | diverse
    model: str | None = None           # None: the registry's default for the mode (the guided default with guidance)
    temperature: float | None = None   # None: the model's default (ab_bins models)
    vibrancy: float = 1.0              # chroma scale in Lab (VIBRANCY)
    samples: int = 1                   # diverse mode: number of layers
    seed: int | None = None            # diverse mode: sample i uses seed + i - 1
    guidance: Guidance = field(default_factory=Guidance)
    instance: InstanceOptions = field(default_factory=InstanceOptions)

    def validate(self) -> None:
        """BadRequest naming the first value out of bounds (shapes of hint images are checked against the image later)."""
        if self.temperature is not None:
            check_number("temperature", self.temperature, TEMPERATURE)
        check_number("vibrancy", self.vibrancy, VIBRANCY)
        check_number("samples", self.samples, SAMPLES, integer=True)
        if self.seed is not None:
            check_number("seed", self.seed, SEED, integer=True)
        check_number("reference strength", self.guidance.reference_strength, REFERENCE_STRENGTH)
        _check_points(self.guidance.points)
        _check_instance(self.instance)
        if self.mode == "instance":
            _check_box_sources(self.instance)


def _check_points(points: tuple[HintPoint, ...]) -> None:
    if len(points) > MAX_HINT_POINTS:
        raise BadRequest(f"at most {MAX_HINT_POINTS} colour points are allowed, got {len(points)}.")
    for number, point in enumerate(points, 1):
        check_number(f"point {number}: size", point.size, HINT_SIZE, integer=True)
        for channel, value in zip("rgb", point.rgb):
            check_number(f"point {number}: {channel}", value, (0, 255), integer=True)


def _check_instance(options: InstanceOptions) -> None:
    if options.boxes not in BOX_SOURCES:
        raise BadRequest(f"boxes must be one of {', '.join(BOX_SOURCES)}, got {options.boxes!r}.")
    check_number("score threshold", options.score_threshold, SCORE_THRESHOLD)
    check_number("max instances", options.max_instances, MAX_INSTANCES, integer=True)
    for number, box in enumerate(options.user_boxes, 1):
        if len(box) != 4 or box[2] < 1 or box[3] < 1:
            raise BadRequest(f"box {number} must be x,y,width,height with a width and height of at least 1, got {box}.")


def _check_box_sources(options: InstanceOptions) -> None:
    """auto means the detector's boxes only: the user's boxes or selection would be ignored, so say so."""
    if options.boxes == "auto" and (options.user_boxes or options.selection is not None):
        raise BadRequest("boxes=auto uses only the detector's boxes; to use your own boxes or selection, ask for "
                         "boxes=selection (yours only) or boxes=both (yours and the detector's).")
    if options.boxes == "selection" and not options.user_boxes and options.selection is None:
        raise BadRequest("boxes=selection needs a selection mask or a list of boxes; give one, or ask for boxes=auto.")


def check_fits_image(options: ColorizeOptions, height: int, width: int) -> None:
    """Guidance and boxes that name pixels must lie on the image (checked before a job is queued)."""
    hint_image = options.guidance.hint_image
    if hint_image is not None and tuple(hint_image.shape[:2]) != (height, width):
        raise BadRequest(f"the hint image is {hint_image.shape[1]} x {hint_image.shape[0]} pixels; it must have "
                         f"the image's size, {width} x {height}.")
    if hint_image is not None and (hint_image.ndim != 3 or hint_image.shape[2] != 4):
        raise BadRequest("the hint image must be RGBA: its alpha marks where the hints are.")
    for number, point in enumerate(options.guidance.points, 1):
        if not (0 <= point.x < width and 0 <= point.y < height):
            raise BadRequest(f"point {number} ({point.x:g}, {point.y:g}) lies outside the {width} x {height} image.")
    selection = options.instance.selection
    if selection is not None and tuple(selection.shape[:2]) != (height, width):
        raise BadRequest(f"the selection mask is {selection.shape[1]} x {selection.shape[0]} pixels; it must have "
                         f"the image's size, {width} x {height}.")
    for number, (x, y, box_width, box_height) in enumerate(options.instance.user_boxes, 1):
        if x < 0 or y < 0 or x + box_width > width or y + box_height > height:
            raise BadRequest(f"box {number} ({x},{y},{box_width},{box_height}) does not fit the {width} x {height} image.")


def parse_points(data) -> tuple[HintPoint, ...]:
    """Colour points from JSON data: [{"x", "y", "r", "g", "b", "size" (optional)}, ...] (x, y in image pixels)."""
    if not isinstance(data, list):
        raise BadRequest('colour points must be a JSON list like [{"x": 10, "y": 20, "r": 200, "g": 30, "b": 30}].')
    points = []
    for number, raw in enumerate(data, 1):
        if not isinstance(raw, dict) or not {"x", "y", "r", "g", "b"} <= set(raw):
            raise BadRequest(f"point {number} must be an object with x, y, r, g, b (and optionally size), got {raw!r}.")
        unknown = sorted(set(raw) - {"x", "y", "r", "g", "b", "size"})
        if unknown:
            raise BadRequest(f"point {number} has unknown field(s) {', '.join(unknown)}; use x, y, r, g, b, size.")
        x, y = (check_number(f"point {number}: {axis}", raw[axis], (0, 1 << 20)) for axis in ("x", "y"))
        rgb = tuple(check_number(f"point {number}: {c}", raw[c], (0, 255), integer=True) for c in "rgb")
        size = check_number(f"point {number}: size", raw.get("size", DEFAULT_HINT_SIZE), HINT_SIZE, integer=True)
        points.append(HintPoint(x, y, rgb, size))
    if len(points) > MAX_HINT_POINTS:
        raise BadRequest(f"at most {MAX_HINT_POINTS} colour points are allowed, got {len(points)}.")
    return tuple(points)


def parse_boxes(text: str) -> tuple[tuple[int, int, int, int], ...]:
    """'x,y,w,h;x,y,w,h' -> boxes in image pixels."""
    boxes = []
    for number, part in enumerate(filter(None, (p.strip() for p in text.split(";"))), 1):
        values = part.split(",")
        if len(values) != 4:
            raise BadRequest(f"box {number} must be x,y,width,height, got {part!r}.")
        x, y, width, height = (check_number(f"box {number}", v.strip(), (0, 1 << 20), integer=True) for v in values)
        if width < 1 or height < 1:
            raise BadRequest(f"box {number} must have a width and height of at least 1, got {part!r}.")
        boxes.append((x, y, width, height))
    return tuple(boxes)
