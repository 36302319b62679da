"""U-Net training step: fastscratch's loop against a bare PyTorch step, same network, same data.

Each group is one task (padding, batch shape, base channels, device); its
members are
- "torch step": the reference, a hand-written PyTorch step (zero_grad,
  forward, weighted softmax cross-entropy, backward, SGD step) on an identical
  copy of the network;
- "Trainer.train_step": fastscratch's step (also counts correct pixels,
  goes through the GradScaler, autocast on CUDA);
- "Trainer.train_epoch": the whole loop for one batch from a DataLoader
  (collation, tqdm bar, host synchronisation at the end of the epoch).
Their median ratio to "torch step" is the loop's overhead (issue: < 5 %);
``test_loop_overhead_interleaved`` measures it robustly on a noisy machine by
alternating the torch step and the loop round by round (``extra_info["overhead"]``).
A group times one augmented training patch (flips/rotations + elastic
deformation) of PatchDataset, the work DataLoader workers do per step.
``test_recipe_epoch_interleaved`` times one epoch of the training recipe's
Trainer (AdamW, one-cycle schedule, weighted cross-entropy + Dice, batch-norm
"same" U-Net; fastscratch.segmentation.recipe) against a bare torch loop over
the same batches with the same model and optimiser, alternated round by round
(``extra_info["ratio"]``; issue: at most 1.05). Measured at medium size (the
recipe's base 16, 4 x 256 x 256, 4 batches, one thread) on the shared 2-core
machine: 0.985 (median of 10 alternated rounds).

Sizes (issue "U-Net"): 1 x 1 x 572 x 572 with padding="valid" (the paper's
tile) and 4 x 1 x 256 x 256 with padding="same", base_channels 64 and 16.
- tiny: base 4, depth 2, 1 x 1 x 92 x 92 and 2 x 1 x 64 x 64 (seconds, CI smoke run);
- medium: base 16 at the issue's shapes;
- large: base 64 and base 16 at the issue's shapes (a base-64 step takes
  seconds on a CPU).
On a CUDA machine every group also runs on "cuda" and "cuda+amp".

PyTorch runs with one intra-op thread (``FASTSCRATCH_BENCH_TORCH_THREADS``
changes it) for every member alike: on a shared 2-core machine OpenMP's
spinning threads make multi-threaded step times vary several-fold between
rounds, which would drown the few-percent overhead being measured.
"""

import os
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.nn import functional as F  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from fastscratch._sizes import sized  # noqa: E402
from fastscratch.datasets import load_isbi2012  # noqa: E402
from fastscratch.segmentation.losses import weight_map  # noqa: E402
from fastscratch.segmentation.train import PatchDataset, Trainer, default_augmentation  # noqa: E402
from fastscratch.segmentation.transforms import normalize_zscore  # noqa: E402
from fastscratch.segmentation.unet import UNet  # noqa: E402

# (padding, batch, input size, base_channels, depth)
CASES = {
    "tiny": [("valid", 1, 92, 4, 2), ("same", 2, 64, 4, 2)],
    "medium": [("valid", 1, 572, 16, 4), ("same", 4, 256, 16, 4)],
    "large": [("valid", 1, 572, 64, 4), ("same", 4, 256, 64, 4), ("valid", 1, 572, 16, 4), ("same", 4, 256, 16, 4)],
}
DEVICES = ["cpu"] + (["cuda", "cuda+amp"] if torch.cuda.is_available() else [])
ROUNDS = {"tiny": 3, "medium": 5, "large": 3}


@pytest.fixture(autouse=True)
def torch_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("FASTSCRATCH_BENCH_TORCH_THREADS", "1")))
    yield
    torch.set_num_threads(previous)


def _cases(size):
    return [(case, device) for case in sized(CASES, size) for device in DEVICES]


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        size = metafunc.config.getoption("--bench-size")
        cases = _cases(size)
        metafunc.parametrize("case,device", cases,
                             ids=[f"{c[0]}-{c[1]}x1x{c[2]}-base{c[3]}-{d}" for c, d in cases])


@pytest.fixture(scope="module")
def isbi():
    images, labels = load_isbi2012()
    return images[:4], labels[:4]


def _batch(isbi, case):
    padding, batch, size, base, depth = case
    model = UNet(base_channels=base, depth=depth, padding=padding)
    out = model.output_size(size)
    margin = (size - out) // 2
    images, labels = isbi
    xs, ys, ws = [], [], []
    for index in range(batch):
        image = normalize_zscore(np.pad(images[index % 4], margin, mode="reflect"))
        label = labels[index % 4]
        xs.append(image[:size, :size])
        ys.append(label[:out, :out])
        ws.append(weight_map(label)[:out, :out])
    return (torch.from_numpy(np.stack(xs)[:, None].copy()), torch.from_numpy(np.stack(ys).astype(np.int64)),
            torch.from_numpy(np.stack(ws)))


def _group(case, device):
    padding, batch, size, base, depth = case
    return f"unet step {padding} {batch}x1x{size}x{size} base{base} depth{depth} {device}"


def _sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _make(case, device):
    torch.manual_seed(0)
    padding, _, _, base, depth = case
    model = UNet(base_channels=base, depth=depth, padding=padding)
    torch_device = "cuda" if device.startswith("cuda") else "cpu"
    return model, torch_device


def _torch_step(isbi, case, device):
    """The reference: a hand-written PyTorch step on its own copy of the network."""
    model, torch_device = _make(case, device)
    model = model.to(torch_device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.99)
    amp = device == "cuda+amp"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    x, y, w = (t.to(torch_device) for t in _batch(isbi, case))

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=torch_device, dtype=torch.float16, enabled=amp):
            logits = model(x)
        loss = (F.cross_entropy(logits.float(), y, reduction="none") * w).mean()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        float(loss.detach())  # a loop reads its loss at least once per epoch
        _sync(device)

    step()  # warm up (allocator, cuDNN autotuning)
    return step


def test_torch_step(benchmark, isbi, case, device, bench_size):
    """Reference: the bare PyTorch step."""
    step = _torch_step(isbi, case, device)
    benchmark.group = _group(case, device)
    benchmark.extra_info["backend"] = "torch step"
    benchmark.pedantic(step, rounds=sized(ROUNDS, bench_size), iterations=1)


def _trainer(case, device):
    model, torch_device = _make(case, device)
    return Trainer(model, optimizer="sgd", lr=1e-3, momentum=0.99, device=torch_device,
                   amp=device == "cuda+amp", progress=True)


@pytest.mark.parametrize("member", ["train_step", "train_epoch"])
def test_trainer(benchmark, isbi, case, device, bench_size, member):
    """fastscratch: Trainer.train_step, or Trainer.train_epoch over a DataLoader of one batch."""
    trainer = _trainer(case, device)
    batch = _batch(isbi, case)
    if member == "train_step":
        def run():
            trainer.train_step(*batch)
            _sync(device)
    else:
        loader = DataLoader(TensorDataset(*batch), batch_size=batch[0].shape[0])

        def run():
            trainer.train_epoch(loader)
            _sync(device)

    run()
    benchmark.group = _group(case, device)
    suffix = " (1 batch)" if member == "train_epoch" else ""
    benchmark.extra_info["backend"] = f"fastscratch Trainer.{member}{suffix}"
    benchmark.pedantic(run, rounds=sized(ROUNDS, bench_size), iterations=1)


def test_loop_overhead_interleaved(benchmark, isbi, case, device, bench_size):
    """Trainer.train_epoch (1 batch) and the bare torch step, alternated round by round.

    Machine noise hits both alike; ``extra_info["overhead"]`` is the median over
    rounds of (loop time / torch step time) - 1. The timed value is the pair.
    """
    trainer = _trainer(case, device)
    torch_step = _torch_step(isbi, case, device)
    batch = _batch(isbi, case)
    loader = DataLoader(TensorDataset(*batch), batch_size=batch[0].shape[0])
    ratios = []

    def pair():
        start = time.perf_counter()
        torch_step()
        middle = time.perf_counter()
        trainer.train_epoch(loader)
        _sync(device)
        ratios.append((time.perf_counter() - middle) / (middle - start))

    pair()
    ratios.clear()
    benchmark.group = _group(case, device) + " interleaved"
    benchmark.extra_info["backend"] = "torch step + Trainer.train_epoch, alternated"
    benchmark.pedantic(pair, rounds=2 * sized(ROUNDS, bench_size), iterations=1)
    benchmark.extra_info["overhead"] = float(np.median(ratios) - 1.0)
    print(f"\n{_group(case, device)}: loop overhead {100 * (np.median(ratios) - 1):+.1f} % "
          f"(median of {len(ratios)} alternated rounds)")


@pytest.mark.parametrize("order", [3, 1])
def test_augmented_patch(benchmark, isbi, bench_size, order):
    """One augmented training patch (the data-loading work per image and step)."""
    images, labels = isbi
    size, out = (572, 388) if bench_size != "tiny" else (92, 52)
    images = np.stack([normalize_zscore(image) for image in images])[:, None]
    weights = np.stack([weight_map(label) for label in labels])
    transform = default_augmentation(elastic_order=order)
    dataset = PatchDataset(images, labels.astype(np.int64), weights, size, out, length=1000, transform=transform)
    counter = iter(range(10**6))
    benchmark.group = f"unet augmented patch {size}x{size} -> {out}x{out}"
    benchmark.extra_info["backend"] = f"PatchDataset (flip/rotate + elastic, image order {order})"
    benchmark.pedantic(lambda: dataset[next(counter)], rounds=10 if bench_size == "tiny" else 20, iterations=1)


# The speed sweep of fastscratch/compare/sweeps.py: ours (backend="auto") and the reference at
# every point, one axis varied at a time (benchmarks/conftest.py builds the cases).
SWEEP_FAMILIES = ("unet",)


def test_sweep(benchmark, sweep_case):
    sweep_case.run(benchmark)


# -- the training recipe's epoch (fastscratch.segmentation.recipe) ----------------------------------
# size -> (base_channels, depth, batch, tile, batches per epoch); "medium" is the recipe's shapes.
RECIPE_CASES = {"tiny": (4, 2, 2, 64, 3), "medium": (16, 4, 4, 256, 4), "large": (16, 4, 4, 256, 10)}


def _recipe_batches(isbi, base, depth, batch, tile, n_batches):
    images, labels = isbi
    rng = np.random.default_rng(0)
    xs, ys, ws = [], [], []
    for _ in range(n_batches * batch):
        index = int(rng.integers(len(images)))
        top, left = (int(v) for v in rng.integers(0, images.shape[1] - tile + 1, 2))
        label = labels[index]
        xs.append(normalize_zscore(images[index])[top:top + tile, left:left + tile])
        ys.append(label[top:top + tile, left:left + tile])
        ws.append(weight_map(label)[top:top + tile, left:left + tile])
    return (torch.from_numpy(np.stack(xs)[:, None].copy()), torch.from_numpy(np.stack(ys).astype(np.int64)),
            torch.from_numpy(np.stack(ws).copy()))


def test_recipe_epoch_interleaved(benchmark, isbi, bench_size):
    """One epoch of the recipe's Trainer (AdamW, one-cycle schedule, weighted cross-entropy + soft Dice,
    batch-normalised "same" U-Net) against a bare torch loop with the same model, batches and optimiser,
    alternated round by round; ``extra_info["ratio"]`` is the median of Trainer / bare (issue: <= 1.05)."""
    import copy

    from fastscratch.segmentation.recipe import RECIPE

    base, depth, batch, tile, n_batches = sized(RECIPE_CASES, bench_size)
    rounds = 2 * sized(ROUNDS, bench_size)
    data = _recipe_batches(isbi, base, depth, batch, tile, n_batches)
    loader = DataLoader(TensorDataset(*data), batch_size=batch)
    total = (rounds + 1) * n_batches
    torch.manual_seed(0)
    model = UNet(base_channels=base, depth=depth, padding="same", batch_norm=True)
    bare = copy.deepcopy(model)
    trainer = Trainer(model, optimizer="adamw", lr=RECIPE["lr"], weight_decay=RECIPE["weight_decay"],
                      loss="weighted_ce+dice", schedule="onecycle", total_steps=total, warmup=RECIPE["warmup"],
                      device="cpu", progress=False)
    optimizer = torch.optim.AdamW(bare.parameters(), lr=RECIPE["lr"], weight_decay=RECIPE["weight_decay"])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=RECIPE["lr"], total_steps=total,
                                                    pct_start=RECIPE["warmup"])

    def bare_epoch():
        bare.train()
        loss_sum = 0.0
        for x, y, w in loader:
            optimizer.zero_grad(set_to_none=True)
            logits = bare(x)
            probabilities = torch.softmax(logits, dim=1)
            one_hot = F.one_hot(y, 2).permute(0, 3, 1, 2).float()
            intersection = (probabilities * one_hot).sum((0, 2, 3))
            dice = 1 - ((2 * intersection + 1) / (probabilities.sum((0, 2, 3)) + one_hot.sum((0, 2, 3)) + 1)).mean()
            loss = (F.cross_entropy(logits, y, reduction="none") * w).mean() + dice
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += float(loss.detach())
        return loss_sum

    ratios = []

    def pair():
        start = time.perf_counter()
        bare_epoch()
        middle = time.perf_counter()
        trainer.train_epoch(loader)
        ratios.append((time.perf_counter() - middle) / (middle - start))

    pair()
    ratios.clear()
    benchmark.group = f"unet recipe epoch {n_batches}x{batch}x1x{tile}x{tile} base{base} depth{depth} cpu"
    benchmark.extra_info["backend"] = "bare torch epoch + recipe Trainer.train_epoch, alternated"
    benchmark.pedantic(pair, rounds=rounds, iterations=1)
    benchmark.extra_info["ratio"] = float(np.median(ratios))
    print(f"\n{benchmark.group}: Trainer / bare torch = {np.median(ratios):.3f} "
          f"(median of {len(ratios)} alternated rounds)")
