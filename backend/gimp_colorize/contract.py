"""The ONNX model contract (docs/DESIGN.md): metadata keys, ModelInfo, and reading + validating a model file.

Reading a model's metadata must be cheap (the registry does it for every file on each refresh) and must not
need the `onnx` package, which is not a runtime dependency. Creating an onnxruntime session just to read
`custom_metadata_map` would load and optimise the whole graph, and fails with opaque messages on broken
files. So this module walks the protobuf wire format itself, through a read-only mmap: only the few
top-level fields it needs are touched, large fields (initializers, nodes) are skipped by their length
prefix without being read, and a length prefix that runs past the end of the file is reported as
truncation. The wire format is stable (protobuf encoding + onnx.proto field numbers, unchanged since IR v3).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import mmap
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidModel

CONTRACT_VERSION = "1"

# metadata_props keys
CONTRACT = "gc.contract"
NAME = "gc.name"
TASK = "gc.task"
VERSION = "gc.version"
COLOUR_SPACE = "gc.colour_space"
INPUT = "gc.input"
WORKING_SIZE = "gc.working_size"
RESIZE = "gc.resize"
SIZE_MULTIPLE = "gc.size_multiple"
OUTPUT = "gc.output"
OUTPUT_KIND = "gc.output_kind"
AB_BINS = "gc.ab_bins"
DEFAULT_TEMPERATURE = "gc.default_temperature"
OPTIONAL_INPUTS = "gc.optional_inputs"
NOISE_DIM = "gc.noise_dim"
DESCRIPTION = "gc.description"
TRAINING_DATA = "gc.training_data"
LICENCE = "gc.licence"
PROVENANCE = "gc.provenance"
CREATED = "gc.created"
# instance mode (docs/DESIGN.md "Instance mode"): the instance network's decoder features, the fusion network's
# inputs for them, the instance model a fusion model was trained with, and the detector's outputs
FEATURE_OUTPUTS = "gc.feature_outputs"
INSTANCE_INPUTS = "gc.instance_inputs"
INSTANCE_MODEL = "gc.instance_model"
DETECTOR_OUTPUTS = "gc.detector_outputs"
INPUT_FORMAT = "gc.input_format"
BOX_FORMAT = "gc.box_format"
LABELS = "gc.labels"

TASKS = ("full", "instance", "diverse", "detector", "fusion")
COLOURIZER_TASKS = ("full", "instance", "diverse", "fusion")  # tasks that predict chroma from lightness
MODES = ("full", "instance", "diverse")  # what a user asks for; each mode is served by a model of that task
GUIDED = "guided"  # a manifest's default_for may also name this: the default model for runs that carry hints
COLOUR_SPACES = ("lab", "yuv", "ycbcr")
OUTPUT_KINDS = ("ab", "ab_bins")
RESIZE_POLICIES = ("square", "keep_aspect")
# hint_ab (N, 2, H, W) + hint_mask (N, 1, H, W): the user's colour points at the working size;
# reference_hist (N, Q) over gc.ab_bins + reference_flag (N, 1): a reference photo's colours (global hint);
# noise (N, Z): what diverse models sample from
OPTIONAL_INPUT_ROLES = ("hint_ab", "hint_mask", "reference_hist", "reference_flag", "noise")
LOCAL_HINT_ROLES = ("hint_ab", "hint_mask")
GLOBAL_HINT_ROLES = ("reference_hist", "reference_flag")

DETECTOR_ROLES = ("boxes", "scores", "classes")  # + optional "count" (valid rows; TF detection API models)
DETECTOR_INPUT_FORMATS = ("uint8_nhwc_rgb",)
BOX_FORMATS = ("yxyx_normalised", "xyxy_normalised")
INSTANCE_INPUT_ROLES = ("features", "boxes", "box_valid")

REQUIRED_KEYS = (CONTRACT, NAME, TASK, VERSION, INPUT, OUTPUT, WORKING_SIZE)
REQUIRED_COLOURIZER_KEYS = (COLOUR_SPACE, RESIZE, SIZE_MULTIPLE, OUTPUT_KIND)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # names travel in URLs and file names
MAX_WORKING_SIZE = 8192


@dataclass(frozen=True)
class ModelInfo:
    """What the contract says about one model file, plus what the registry found out (sha256, verified...)."""

    path: Path
    name: str
    task: str
    version: str
    input_name: str
    output_name: str
    working_size: int
    colour_space: str = "lab"
    resize: str = "square"
    size_multiple: int = 1
    output_kind: str = "ab"
    ab_bins: tuple[tuple[float, float], ...] = ()
    default_temperature: float | None = None
    optional_inputs: dict[str, str] = field(default_factory=dict)
    noise_dim: int | None = None
    description: str = ""
    training_data: str = ""
    licence: str = ""
    provenance: str = ""
    created: str = ""
    graph_inputs: tuple[str, ...] = ()
    graph_outputs: tuple[str, ...] = ()
    # instance mode
    feature_outputs: tuple[str, ...] = ()          # instance: decoder features, deepest level first
    instance_inputs: dict = field(default_factory=dict)  # fusion: {"features": [names], "boxes", "box_valid"}
    instance_model: str = ""                       # fusion: the instance model whose features it was trained on
    detector_outputs: dict[str, str] = field(default_factory=dict)  # detector: role -> output name
    input_format: str = ""                         # detector: how the image is fed
    box_format: str = ""                           # detector: layout of its boxes
    labels: dict[int, str] = field(default_factory=dict)  # detector: class id -> name
    # filled in by the registry
    sha256: str = ""
    verified: bool = False
    default: bool = False
    guided_default: bool = False  # the model guided runs of its task use when none is named
    source: str = ""  # "shipped" | "user" | "file"

    def working_shape(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) the model runs at for an image of height x width, by the model's resize policy."""
        if self.resize == "square":
            return self.working_size, self.working_size
        scale = self.working_size / max(height, width)
        m = self.size_multiple
        return max(m, round(height * scale / m) * m), max(m, round(width * scale / m) * m)

    @property
    def has_noise(self) -> bool:
        return "noise" in self.optional_inputs

    @property
    def takes_local_hints(self) -> bool:
        return all(role in self.optional_inputs for role in LOCAL_HINT_ROLES)

    @property
    def takes_reference(self) -> bool:
        return all(role in self.optional_inputs for role in GLOBAL_HINT_ROLES)

    def to_json(self) -> dict:
        """The /v1/models entry: everything but the local path and the long bin list."""
        return {
            "name": self.name, "task": self.task, "version": self.version, "verified": self.verified,
            "default": self.default, "guided_default": self.guided_default, "description": self.description, "colour_space": self.colour_space,
            "output_kind": self.output_kind, "working_size": self.working_size, "resize": self.resize,
            "default_temperature": self.default_temperature, "optional_inputs": sorted(self.optional_inputs),
            "noise_dim": self.noise_dim, "training_data": self.training_data, "licence": self.licence,
            "provenance": self.provenance, "created": self.created, "sha256": self.sha256, "source": self.source,
            "file": self.path.name, "instance_model": self.instance_model,
        }

    def replace(self, **changes) -> "ModelInfo":
        return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------------------- reading the file


def read_model_info(path: Path | str) -> ModelInfo:
    """Parse and validate a model file's contract metadata; raises InvalidModel with the reason."""
    path = Path(path)
    proto = read_onnx_header(path)
    return model_info_from_metadata(path, proto.metadata, proto.inputs, proto.outputs)


@dataclass
class OnnxHeader:
    metadata: dict[str, str]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def read_onnx_header(path: Path) -> OnnxHeader:
    """metadata_props and graph input/output names of an ONNX file, without reading its weights."""
    try:
        with open(path, "rb") as handle:
            if handle.seek(0, 2) == 0:
                raise InvalidModel("empty file")
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _parse_model(data)
    except OSError as exc:
        raise InvalidModel(f"cannot read the file ({exc.strerror or exc})") from None


class _Truncated(Exception):
    pass


# onnx.proto field numbers
_MODEL_IR_VERSION, _MODEL_GRAPH, _MODEL_METADATA = 1, 7, 14
_GRAPH_INPUT, _GRAPH_OUTPUT = 11, 12
_VALUE_INFO_NAME = 1
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
_LENGTH_DELIMITED = 2


def _parse_model(data) -> OnnxHeader:
    metadata: dict[str, str] = {}
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    seen_graph = seen_ir = False
    try:
        for number, wire_type, value in _fields(data, 0, len(data)):
            if number == _MODEL_GRAPH and wire_type == _LENGTH_DELIMITED:
                inputs, outputs = _graph_io(data, *value)
                seen_graph = True
            elif number == _MODEL_METADATA and wire_type == _LENGTH_DELIMITED:
                entry = _strings(data, *value, wanted=(_ENTRY_KEY, _ENTRY_VALUE))
                metadata[entry.get(_ENTRY_KEY, "")] = entry.get(_ENTRY_VALUE, "")
            elif number == _MODEL_IR_VERSION and wire_type == 0:
                seen_ir = True
    except _Truncated as exc:
        raise InvalidModel(f"truncated or corrupt file: {exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidModel(f"not an ONNX model (unparsable protobuf: {exc})") from None
    if not (seen_graph and seen_ir):
        raise InvalidModel("not an ONNX model (no ir_version or no graph; truncated or a different file type?)")
    return OnnxHeader(metadata, inputs, outputs)


def _graph_io(data, start: int, end: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    inputs, outputs = [], []
    for number, wire_type, value in _fields(data, start, end):
        if number in (_GRAPH_INPUT, _GRAPH_OUTPUT) and wire_type == _LENGTH_DELIMITED:
            name = _strings(data, *value, wanted=(_VALUE_INFO_NAME,)).get(_VALUE_INFO_NAME, "")
            (inputs if number == _GRAPH_INPUT else outputs).append(name)
    return tuple(inputs), tuple(outputs)


def _strings(data, start: int, end: int, wanted: tuple[int, ...]) -> dict[int, str]:
    return {
        number: data[value[0] : value[1]].decode("utf-8")
        for number, wire_type, value in _fields(data, start, end)
        if number in wanted and wire_type == _LENGTH_DELIMITED
    }


def _fields(data, pos: int, end: int):
    """Yield (field number, wire type, value) of one protobuf message between byte offsets pos and end.

    value is an int for varint/fixed fields and a (start, end) byte range for length-delimited ones,
    so a large field (weights) is skipped without being read or copied.
    """
    while pos < end:
        key, pos = _varint(data, pos, end)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ValueError(f"field number 0 at byte {pos}")
        if wire_type == 0:
            value, pos = _varint(data, pos, end)
        elif wire_type == 1 or wire_type == 5:
            size = 8 if wire_type == 1 else 4
            if pos + size > end:
                raise _Truncated(f"a {size}-byte field at byte {pos} runs past the end ({end} bytes)")
            value, pos = int.from_bytes(data[pos : pos + size], "little"), pos + size
        elif wire_type == _LENGTH_DELIMITED:
            size, pos = _varint(data, pos, end)
            if pos + size > end:
                raise _Truncated(f"field {number} declares {size} bytes at byte {pos} but only {end - pos} remain")
            value, pos = (pos, pos + size), pos + size
        else:
            raise ValueError(f"unsupported wire type {wire_type} at byte {pos}")
        yield number, wire_type, value


def _varint(data, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise _Truncated(f"a number runs past the end of the data at byte {pos}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError(f"varint longer than 10 bytes at byte {pos}")


# ---------------------------------------------------------------------------- validation


def model_info_from_metadata(
    path: Path, meta: dict[str, str], graph_inputs: tuple[str, ...] = (), graph_outputs: tuple[str, ...] = ()
) -> ModelInfo:
    """Validate contract metadata (all strings) into a ModelInfo; InvalidModel names the first problem."""
    _check_required(meta, REQUIRED_KEYS)
    if meta[CONTRACT] != CONTRACT_VERSION:
        raise InvalidModel(f"contract version {meta[CONTRACT]!r} is not supported (this backend reads {CONTRACT_VERSION!r})")
    task = meta[TASK]
    if task not in TASKS:
        raise InvalidModel(f"unknown task {task!r} (expected one of {', '.join(TASKS)})")
    if not NAME_PATTERN.match(meta[NAME]):
        raise InvalidModel(f"model name {meta[NAME]!r} must be 1-64 letters, digits, '.', '_' or '-'")
    if task in COLOURIZER_TASKS:
        _check_required(meta, REQUIRED_COLOURIZER_KEYS)
    info = ModelInfo(
        path=path,
        name=meta[NAME],
        task=task,
        version=meta[VERSION],
        input_name=meta[INPUT],
        output_name=meta[OUTPUT],
        working_size=_int(meta, WORKING_SIZE, 8, MAX_WORKING_SIZE),
        colour_space=_choice(meta, COLOUR_SPACE, COLOUR_SPACES, "lab"),
        resize=_choice(meta, RESIZE, RESIZE_POLICIES, "square"),
        size_multiple=_int(meta, SIZE_MULTIPLE, 1, 1024) if SIZE_MULTIPLE in meta else 1,
        output_kind=_choice(meta, OUTPUT_KIND, OUTPUT_KINDS, "ab"),
        optional_inputs=_optional_inputs(meta),
        noise_dim=_int(meta, NOISE_DIM, 1, 1 << 16) if NOISE_DIM in meta else None,
        description=meta.get(DESCRIPTION, ""),
        training_data=meta.get(TRAINING_DATA, ""),
        licence=meta.get(LICENCE, ""),
        provenance=meta.get(PROVENANCE, ""),
        created=meta.get(CREATED, ""),
        graph_inputs=graph_inputs,
        graph_outputs=graph_outputs,
    )
    if info.output_kind == "ab_bins" and task in COLOURIZER_TASKS:
        info = info.replace(ab_bins=_ab_bins(meta), default_temperature=_temperature(meta))
    elif "reference_hist" in info.optional_inputs:
        info = info.replace(ab_bins=_ab_bins(meta))  # the histogram's bins, even for a regression output
    info = _instance_mode_fields(info, meta)
    _check_graph_names(info)
    _check_roles_paired(info)
    if info.has_noise and info.noise_dim is None:
        raise InvalidModel(f"a 'noise' optional input needs {NOISE_DIM}")
    return info


def _instance_mode_fields(info: ModelInfo, meta: dict[str, str]) -> ModelInfo:
    """The task-specific keys of instance mode: instance features, fusion inputs, detector outputs."""
    if info.task == "instance":
        _check_required(meta, (FEATURE_OUTPUTS,))
        if info.resize != "square":
            raise InvalidModel(f"an instance model must have {RESIZE} 'square' (its crops are batched), got {info.resize!r}")
        return info.replace(feature_outputs=_names_list(meta, FEATURE_OUTPUTS))
    if info.task == "fusion":
        _check_required(meta, (INSTANCE_INPUTS, INSTANCE_MODEL))
        return info.replace(instance_inputs=_instance_inputs(meta), instance_model=meta[INSTANCE_MODEL])
    if info.task == "detector":
        _check_required(meta, (DETECTOR_OUTPUTS, INPUT_FORMAT, BOX_FORMAT))
        outputs = _json_object(meta, DETECTOR_OUTPUTS)
        missing = [role for role in DETECTOR_ROLES if role not in outputs]
        unknown = sorted(set(outputs) - set(DETECTOR_ROLES) - {"count"})
        if missing or unknown:
            raise InvalidModel(f"{DETECTOR_OUTPUTS} must map {', '.join(DETECTOR_ROLES)} (and optionally count) to "
                               f"output names; missing {', '.join(missing) or 'none'}, unknown {', '.join(unknown) or 'none'}")
        labels = {}
        for key, name in _json_object(meta, LABELS).items() if LABELS in meta else ():
            if not str(key).isdigit():
                raise InvalidModel(f"{LABELS} keys must be class numbers, got {key!r}")
            labels[int(key)] = name
        return info.replace(detector_outputs=outputs, labels=labels,
                            input_format=_choice(meta, INPUT_FORMAT, DETECTOR_INPUT_FORMATS, ""),
                            box_format=_choice(meta, BOX_FORMAT, BOX_FORMATS, ""))
    return info


def _json_object(meta: dict[str, str], key: str) -> dict:
    value = _json(meta, key)
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidModel(f"{key} must be a JSON object whose values are names")
    return value


def _names_list(meta: dict[str, str], key: str) -> tuple[str, ...]:
    value = _json(meta, key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise InvalidModel(f"{key} must be a non-empty JSON list of names")
    return tuple(value)


def _instance_inputs(meta: dict[str, str]) -> dict:
    value = _json(meta, INSTANCE_INPUTS)
    ok = (isinstance(value, dict) and set(value) == set(INSTANCE_INPUT_ROLES)
          and isinstance(value["features"], list) and value["features"]
          and all(isinstance(v, str) and v for v in [*value["features"], value["boxes"], value["box_valid"]]))
    if not ok:
        raise InvalidModel(f'{INSTANCE_INPUTS} must be {{"features": [names], "boxes": name, "box_valid": name}}')
    return {"features": tuple(value["features"]), "boxes": value["boxes"], "box_valid": value["box_valid"]}


def _check_roles_paired(info: ModelInfo) -> None:
    """A hint without its mask (or a histogram without its flag) cannot be fed meaningfully."""
    for pair in (LOCAL_HINT_ROLES, GLOBAL_HINT_ROLES):
        given = [role for role in pair if role in info.optional_inputs]
        if given and len(given) != len(pair):
            raise InvalidModel(f"{OPTIONAL_INPUTS}: role {given[0]!r} needs {' and '.join(pair)} together")


def _check_required(meta: dict[str, str], keys) -> None:
    missing = [key for key in keys if not meta.get(key)]
    if missing:
        raise InvalidModel(f"missing metadata key(s) {', '.join(missing)} (not a gimp-colorize model?)")


def _int(meta: dict[str, str], key: str, low: int, high: int) -> int:
    try:
        value = int(meta[key])
    except ValueError:
        raise InvalidModel(f"{key} must be an integer, got {meta[key]!r}") from None
    if not low <= value <= high:
        raise InvalidModel(f"{key} must be between {low} and {high}, got {value}")
    return value


def _choice(meta: dict[str, str], key: str, choices: tuple[str, ...], default: str) -> str:
    value = meta.get(key, default)
    if value not in choices:
        raise InvalidModel(f"{key} {value!r} is not one of {', '.join(choices)}")
    return value


def _json(meta: dict[str, str], key: str):
    try:
        return json.loads(meta[key])
    except (KeyError, ValueError) as exc:
        raise InvalidModel(f"{key} must be JSON ({exc})") from None


def _optional_inputs(meta: dict[str, str]) -> dict[str, str]:
    if OPTIONAL_INPUTS not in meta:
        return {}
    roles = _json(meta, OPTIONAL_INPUTS)
    if not isinstance(roles, dict) or not all(isinstance(v, str) for v in roles.values()):
        raise InvalidModel(f"{OPTIONAL_INPUTS} must be a JSON object mapping role -> input name")
    unknown = sorted(set(roles) - set(OPTIONAL_INPUT_ROLES))
    if unknown:
        raise InvalidModel(f"{OPTIONAL_INPUTS}: unknown role(s) {', '.join(unknown)} (known: {', '.join(OPTIONAL_INPUT_ROLES)})")
    return dict(roles)


def _ab_bins(meta: dict[str, str]) -> tuple[tuple[float, float], ...]:
    if AB_BINS not in meta:
        raise InvalidModel(f"output kind ab_bins needs {AB_BINS}")
    bins = _json(meta, AB_BINS)
    ok = isinstance(bins, list) and len(bins) >= 2 and all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, (int, float)) for v in pair) for pair in bins
    )
    if not ok:
        raise InvalidModel(f"{AB_BINS} must be a JSON list of at least two [a, b] pairs")
    return tuple((float(a), float(b)) for a, b in bins)


def _temperature(meta: dict[str, str]) -> float:
    raw = meta.get(DEFAULT_TEMPERATURE, "0.38")
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise InvalidModel(f"{DEFAULT_TEMPERATURE} must be a positive number, got {raw!r}")
    return value


def metadata_input_names(info: ModelInfo) -> list[str]:
    """Every graph input the metadata names."""
    names = [info.input_name, *info.optional_inputs.values()]
    if info.instance_inputs:
        names += [*info.instance_inputs["features"], info.instance_inputs["boxes"], info.instance_inputs["box_valid"]]
    return names


def metadata_output_names(info: ModelInfo) -> list[str]:
    """Every graph output the metadata names."""
    return [info.output_name, *info.feature_outputs, *info.detector_outputs.values()]


def _check_graph_names(info: ModelInfo) -> None:
    """The names the metadata points at must exist in the graph (skipped when the graph's names are unknown)."""
    if info.graph_inputs:
        for name in metadata_input_names(info):
            if name not in info.graph_inputs:
                raise InvalidModel(f"input {name!r} named in the metadata is not a graph input ({', '.join(info.graph_inputs)})")
    if info.graph_outputs:
        for name in metadata_output_names(info):
            if name not in info.graph_outputs:
                raise InvalidModel(f"output {name!r} named in the metadata is not a graph output ({', '.join(info.graph_outputs)})")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
