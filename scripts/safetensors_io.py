"""Read and write safetensors files with plain PyTorch, for machines without the `safetensors`
package (Debian ships python3-torch but not it). Same format and checks as the reference
implementation (https://github.com/huggingface/safetensors) and runtime/io/safetensors.c:

    8 bytes   N, little-endian u64
    N bytes   JSON: {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets"}, ...},
              padded with spaces so the data starts 8-byte aligned
    rest      the data buffer, tensors tiling it exactly, little-endian, C order

    import safetensors_io as st
    st.save({"w": torch.ones(2, 3)}, "x.safetensors", metadata={"step": "10"})
    tensors = st.load("x.safetensors")                      # dict name -> torch.Tensor
    tensors, metadata = st.load_with_metadata("x.safetensors")
"""
import json
import math
import os
import sys

import torch

MAX_HEADER = 100_000_000  # the reference implementation's limit
DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}
NAMES = {v: k for k, v in DTYPES.items()}


class FormatError(ValueError):
    pass


def _no_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise FormatError(f"key {k!r} occurs twice")
        seen[k] = v
    return seen


def _uint(v):
    # bool is an int in Python; JSON true is not an offset
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def load_with_metadata(path):
    """(dict name -> tensor, dict of metadata strings); FormatError names the file and problem."""
    if sys.byteorder != "little":
        raise NotImplementedError("safetensors data is little-endian; this host is not")
    with open(path, "rb") as f:
        buf = f.read()
    try:
        return _parse(buf)
    except FormatError as e:
        raise FormatError(f"{path}: {e}") from None


def load(path):
    """dict name -> torch.Tensor (CPU, a copy owning its memory)."""
    return load_with_metadata(path)[0]


def _parse(buf):
    if len(buf) < 8:
        raise FormatError(f"file is {len(buf)} bytes, shorter than the 8-byte header length")
    n = int.from_bytes(buf[:8], "little")
    if n == 0 or n > MAX_HEADER or n > len(buf) - 8:
        raise FormatError(f"header length {n} is 0, over {MAX_HEADER} or past the end of the file")
    text = buf[8:8 + n]
    if text[:1] != b"{":
        raise FormatError("header does not start with '{'")
    try:
        header = json.loads(text.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"header is not UTF-8 JSON: {e}") from None
    data = memoryview(buf)[8 + n:]

    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise FormatError("__metadata__ is not a map of strings")
    spans, tensors = [], {}
    for name, info in header.items():
        if not isinstance(info, dict):
            raise FormatError(f"entry {name!r} is not an object")
        dtype = DTYPES.get(info.get("dtype"))
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if dtype is None:
            raise FormatError(f"tensor {name!r} has unsupported dtype {info.get('dtype')!r}")
        if not isinstance(shape, list) or not all(_uint(d) for d in shape):
            raise FormatError(f"tensor {name!r} has a bad shape {shape!r}")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_uint(o) for o in offsets):
            raise FormatError(f"tensor {name!r} has bad data_offsets {offsets!r}")
        begin, end = offsets
        size = torch.tensor([], dtype=dtype).element_size()
        if end < begin or end > len(data) or end - begin != math.prod(shape) * size:
            raise FormatError(f"tensor {name!r}: shape {shape} does not fit data_offsets {offsets}")
        spans.append((begin, end, name))
        # bytearray: frombuffer on the read-only bytes would warn and alias
        flat = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype) if end > begin \
            else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(shape)
    pos = 0
    for begin, end, name in sorted(spans):
        if begin != pos:
            raise FormatError(f"tensor {name!r} overlaps another or leaves a gap at byte {pos}")
        pos = end
    if pos != len(data):
        raise FormatError(f"{len(data) - pos} data bytes after the last tensor")
    return tensors, metadata


def save(tensors, path, metadata=None):
    """Writes tensors (in the dict's order) atomically: a temporary file, fsync, rename."""
    if sys.byteorder != "little":
        raise NotImplementedError("safetensors data is little-endian; this host is not")
    header, chunks, offset = {}, [], 0
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("metadata must map str to str")
        header["__metadata__"] = dict(metadata)
    for name, t in tensors.items():
        if name == "__metadata__":
            raise ValueError("'__metadata__' is not a tensor name")
        if t.dtype not in NAMES:
            raise TypeError(f"tensor {name!r}: dtype {t.dtype} has no safetensors name here")
        t = t.detach().to("cpu").contiguous()
        # bytes through a same-sized integer view: numpy has no bfloat16
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.dtype != torch.bool \
            else t.reshape(-1).to(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(len(text).to_bytes(8, "little"))
            f.write(text)
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


if __name__ == "__main__":
    # python3 safetensors_io.py FILE...: lists each file's tensors and metadata
    for p in sys.argv[1:]:
        ts, meta = load_with_metadata(p)
        print(f"{p}: {len(ts)} tensors, metadata {meta}")
        for k, v in ts.items():
            print(f"  {k}: {str(v.dtype).replace('torch.', '')} {list(v.shape)}")
