"""devinterp reference: LLC of the seed-0 MLP 784-256-256-10 on MNIST, SGLD, 4 chains x 200 draws."""

import time
import warnings

from _common import emit, load_mnist_train, median, mlp, parser, require, setup_threads

torch = require("torch")
require("devinterp")
from importlib.metadata import version

from devinterp.optim import SGLD
from devinterp.slt.sampler import estimate_learning_coeff_with_summary
from devinterp.utils import default_nbeta

p = parser(__doc__)
p.add_argument("--repeats", type=int, default=3, help="timed calls (default 3); the median is reported")
p.add_argument("--chains", type=int, default=4)
p.add_argument("--draws", type=int, default=200)
p.add_argument("--batch", type=int, default=128)
p.add_argument("--lr", type=float, default=1e-4, help="SGLD step size epsilon")
p.add_argument("--localization", type=float, default=100.0, help="gamma")
args = p.parse_args()
threads = setup_threads(args.threads)
warnings.filterwarnings("ignore")  # devinterp warns that SGLD is deprecated and that seeds are set

x, y, where = load_mnist_train(args.data_dir)
dataset = torch.utils.data.TensorDataset(x, y)
print(f"devinterp {version('devinterp')}, torch {torch.__version__}, {threads} threads, MNIST {len(dataset)} from {where}")


def evaluate(model, data):
    inputs, targets = data
    return torch.nn.functional.cross_entropy(model(inputs), targets)


def run(seed, chains, draws):
    model = mlp(seed=0)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch, shuffle=True,
                                         generator=torch.Generator().manual_seed(seed))
    nbeta = default_nbeta(loader)  # batch / ln(batch)
    t0 = time.perf_counter()
    stats = estimate_learning_coeff_with_summary(
        model, loader=loader, evaluate=evaluate, sampling_method=SGLD,
        optimizer_kwargs=dict(lr=args.lr, localization=args.localization, nbeta=nbeta),
        num_chains=chains, num_draws=draws, num_burnin_steps=0, num_steps_bw_draws=1,
        cores=1, seed=seed, device="cpu", verbose=False)
    return time.perf_counter() - t0, stats, nbeta


run(0, 1, 2)  # untimed warm-up: the first optimizer construction imports torch._dynamo (~2 s)
times, llcs = [], []
for r in range(args.repeats):
    t, stats, nbeta = run(r, args.chains, args.draws)
    times.append(t)
    llcs.append(float(stats["llc/mean"]))
    print(f"repeat {r}: {times[-1]:.3f} s, llc/mean {llcs[-1]:.3f} +- {stats['llc/std']:.3f} (nbeta {nbeta:.3f})")

med = median(times)
print(f"median {med:.3f} s over {len(times)} calls ({args.chains} chains x {args.draws} draws)")
emit({"workload": f"llc_{args.chains}x{args.draws}", "seconds_median": med, "seconds_all": times,
      "llc_mean": sum(llcs) / len(llcs), "llc_all": llcs, "nbeta": nbeta,
      "devinterp": version("devinterp"), "torch": torch.__version__, "threads": threads})
