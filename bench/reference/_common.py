"""Shared helpers for the reference benchmarks: package checks, MNIST loading, the MLP."""

import argparse
import gzip
import importlib
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")


def require(*modules):
    """Import the named modules or exit(2) with an install hint."""
    out = []
    for name in modules:
        try:
            out.append(importlib.import_module(name))
        except ImportError as e:
            sys.exit(f"error: Python package '{name}' is missing ({e}); "
                     f"install the pins in {Path(__file__).parent / 'requirements.txt'} (see README.md)")
    return out if len(out) > 1 else out[0]


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data-dir", default=None,
                   help="folder holding mnist/ (default: $SLT_DATA_DIR, <repo>/datasets, /work/shared/datasets)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: number of cores)")
    return p


def setup_threads(threads):
    torch = require("torch")
    n = threads or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


def _mnist_dir(root):
    root = Path(root)
    for d in (root / "mnist", root):
        if all((d / f).is_file() for f in FILES):
            return d
    return None


def find_mnist(data_dir):
    if data_dir:
        candidates = [data_dir]
    else:
        candidates = [os.environ.get("SLT_DATA_DIR") or None, REPO / "datasets", "/work/shared/datasets"]
    for c in filter(None, candidates):
        d = _mnist_dir(c)
        if d:
            return d
    sys.exit(f"error: no MNIST IDX files ({', '.join(FILES)}) under any of {[str(c) for c in candidates if c]}")


def mean_std(mnist_dir):
    """MNIST mean/std from the project's manifest.json if one is found, else the usual constants."""
    for m in (mnist_dir.parent / "manifest.json", REPO / "datasets" / "manifest.json"):
        if m.is_file():
            entry = json.loads(m.read_text()).get("datasets", {}).get("mnist", {})
            if "mean" in entry and "std" in entry:
                return float(entry["mean"]), float(entry["std"])
    return 0.1307, 0.3081


def load_mnist_train(data_dir=None, limit=60000):
    """First `limit` training images as float32 (N, 784), normalised (p/255 - mean)/std, and int64 labels."""
    np, torch = require("numpy", "torch")
    d = find_mnist(data_dir)
    with gzip.open(d / FILES[0], "rb") as f:
        raw = f.read()
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">u4")
    assert magic == 2051, f"{d / FILES[0]}: bad IDX magic {magic}"
    pixels = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows * cols)
    with gzip.open(d / FILES[1], "rb") as f:
        raw = f.read()
    magic, m = np.frombuffer(raw[:8], dtype=">u4")
    assert magic == 2049 and m == n, f"{d / FILES[1]}: bad IDX header"
    labels = np.frombuffer(raw, dtype=np.uint8, offset=8)
    mean, std = mean_std(d)
    x = (pixels[:limit].astype(np.float32) * np.float32(1.0 / (255.0 * std)) - np.float32(mean / std))
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(labels[:limit].astype(np.int64)), d


def mlp(seed=0):
    """MLP 784-256-ReLU-256-ReLU-10, PyTorch default init, seeded."""
    torch = require("torch")
    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))


def median(xs):
    s = sorted(xs)
    k = len(s) // 2
    return s[k] if len(s) % 2 else 0.5 * (s[k - 1] + s[k])


def emit(result):
    """The one machine-readable line: the last line of stdout."""
    print(json.dumps(result), flush=True)
