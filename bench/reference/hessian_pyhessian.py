"""PyHessian reference: Hessian-vector products, Hutchinson trace and top eigenvalue of the seed-0
MLP 784-256-256-10 on one batch of the first N MNIST training examples."""

import math
import sys
import time
import warnings

from _common import emit, load_mnist_train, median, mlp, parser, require, setup_threads

torch = require("torch")
require("pyhessian")
from importlib.metadata import version

import pyhessian  # noqa: F401

ph = sys.modules["pyhessian.hessian"]  # the module; `pyhessian.hessian` is the class

p = parser(__doc__)
p.add_argument("--examples", type=int, default=1000, help="size of the one batch (default 1000)")
p.add_argument("--hvps", type=int, default=50, help="timed Hessian-vector products (default 50)")
p.add_argument("--probes", type=int, default=100, help="Hutchinson probes (default 100)")
args = p.parse_args()
threads = setup_threads(args.threads)

x, y, where = load_mnist_train(args.data_dir, limit=args.examples)
print(f"pyhessian {version('pyhessian')}, torch {torch.__version__}, {threads} threads, "
      f"{x.shape[0]} examples from {where}")

# Count the products PyHessian makes (its methods call this module-level function).
calls = [0]
_hvp = ph.hessian_vector_product


def counted_hvp(gradsH, params, v):
    calls[0] += 1
    return _hvp(gradsH, params, v)


ph.hessian_vector_product = counted_hvp
# PyHessian's set-up calls loss.backward(create_graph=True), which torch warns about.
warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")

model = mlp(seed=0)
t0 = time.perf_counter()  # set-up: one forward + backward(create_graph=True) on the batch
hc = ph.hessian(model, torch.nn.CrossEntropyLoss(), data=(x, y), cuda=False)
setup = time.perf_counter() - t0
n_params = sum(q.numel() for q in hc.params)
print(f"set-up (gradient with create_graph=True): {setup:.4f} s, {n_params} parameters")

# (a) single products, Rademacher vectors, as PyHessian's trace draws them.
torch.manual_seed(0)
hvp_times = []
for i in range(args.hvps + 3):  # the first 3 are untimed warm-up
    v = [torch.randint_like(q, high=2) * 2 - 1 for q in hc.params]
    t0 = time.perf_counter()
    _hvp(hc.gradsH, hc.params, v)
    if i >= 3:
        hvp_times.append(time.perf_counter() - t0)
hvp = median(hvp_times)
print(f"Hessian-vector product: median {1e3 * hvp:.3f} ms over {len(hvp_times)}")

# (b) Hutchinson trace, exactly `probes` probes: PyHessian stops early when
# |mean - previous| / (previous + 1e-6) < tol; with tol = -inf that never holds (tol=0 could, if the
# running mean went negative).
torch.manual_seed(0)
calls[0] = 0
t0 = time.perf_counter()
vhv = hc.trace(maxIter=args.probes, tol=-math.inf)
trace_s = time.perf_counter() - t0
assert len(vhv) == args.probes == calls[0], (len(vhv), calls[0])
trace = sum(vhv) / len(vhv)
print(f"trace ({len(vhv)} probes): {trace:.4f} in {trace_s:.3f} s")

# (c) top eigenvalue by power iteration, PyHessian defaults (maxIter 100, tol 1e-3).
torch.manual_seed(0)
calls[0] = 0
t0 = time.perf_counter()
eigs, _ = hc.eigenvalues(top_n=1)
eig_s = time.perf_counter() - t0
print(f"top eigenvalue: {eigs[0]:.4f} in {eig_s:.3f} s ({calls[0]} power iterations)")

emit({"workload": "hessian", "examples": int(x.shape[0]), "params": n_params,
      "hvp_seconds": hvp, "setup_seconds": setup,
      f"trace_{args.probes}_seconds": trace_s, "trace": trace,
      "top_eig_seconds": eig_s, "top_eig": eigs[0], "top_eig_iterations": calls[0],
      "pyhessian": version("pyhessian"), "torch": torch.__version__, "threads": threads})
