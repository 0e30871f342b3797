"""PyTorch reference: plain-SGD epochs of MLP 784-256-256-10 on the 60k MNIST train images, batch 128."""

import time

from _common import emit, load_mnist_train, median, mlp, parser, require, setup_threads

torch = require("torch")

p = parser(__doc__)
p.add_argument("--epochs", type=int, default=3, help="timed epochs (default 3); the median is reported")
p.add_argument("--batch", type=int, default=128)
p.add_argument("--lr", type=float, default=0.01)
args = p.parse_args()
threads = setup_threads(args.threads)

x, y, where = load_mnist_train(args.data_dir)
n = x.shape[0]
loss_fn = torch.nn.CrossEntropyLoss()
print(f"torch {torch.__version__}, {threads} threads, MNIST {n} images from {where}, batch {args.batch}, lr {args.lr}")


def step(model, opt, idx):
    loss = loss_fn(model(x.index_select(0, idx)), y.index_select(0, idx))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()  # read every step, like the Rust loop


# Warm-up (untimed): the Rust bench times a one-batch step breakdown before its epochs.
model = mlp(seed=0)
opt = torch.optim.SGD(model.parameters(), lr=args.lr)
for _ in range(20):
    step(model, opt, torch.arange(args.batch))

times, steps = [], 0
for epoch in range(args.epochs):
    # Like the Rust bench: fresh seed-0 model each epoch, permutation drawn before the clock starts,
    # last batch smaller (no drop_last): 469 steps for 60,000 images.
    model = mlp(seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.0)
    batches = torch.randperm(n, generator=torch.Generator().manual_seed(epoch)).split(args.batch)
    t0 = time.perf_counter()
    for idx in batches:
        last = step(model, opt, idx)
    times.append(time.perf_counter() - t0)
    steps = len(batches)
    print(f"epoch {epoch}: {times[-1]:.3f} s, {1e3 * times[-1] / steps:.3f} ms/step, last loss {last:.4f}")

med = median(times)
print(f"median epoch {med:.3f} s over {len(times)} epochs, {1e3 * med / steps:.3f} ms/step")
emit({"workload": "sgd_epoch", "seconds_median": med, "seconds_all": times, "steps": steps,
      "ms_per_step": 1e3 * med / steps, "torch": torch.__version__, "threads": threads})
