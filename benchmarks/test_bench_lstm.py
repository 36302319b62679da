"""LSTM training step: the scratch LSTM (plain and fused) vs torch.nn.LSTM.

One training step = forward of a 2-layer LSTM over a batch of windows, a linear
head on the last hidden state, MSE loss, backward, Adam step; the shape of
:class:`fastscratch.LSTMForecaster`'s training. Default size (issue "LSTM
forecaster"): batch 64, lookback 24, hidden 64, 2 layers, float32.

CPU runs use one PyTorch thread for every implementation (restored after): at
these sizes the GEMMs are too small to gain from threads, and on a busy machine
OpenMP threads competing for cores made steps many times slower and the timings
meaningless. On a CUDA machine the same step also runs on the GPU (scratch
fused vs nn.LSTM, which uses cuDNN), with a synchronize after each step.

Measured and not kept (see fastscratch/timeseries/lstm.py): torch.compile of
the plain LSTM (188 s to compile, then 69 ms/step against 10-60 ms for the
others on the busy 2-core machine) and torch.jit.script of the fused loops
(3-13 % faster loops, but torch.jit.script is deprecated in torch 2.13).
"""

import pytest

torch = pytest.importorskip("torch")

from fastscratch._sizes import sized  # noqa: E402
from fastscratch.timeseries.lstm import LSTM  # noqa: E402

SIZES = {  # (batch, lookback, hidden, layers)
    "tiny": (8, 8, 16, 2),
    "medium": (64, 24, 64, 2),
    "large": (256, 48, 128, 2),
}
ROUNDS = {"tiny": (3, 2), "medium": (15, 5), "large": (10, 3)}  # (rounds, iterations)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _training_step(impl, size, device):
    batch, lookback, hidden, layers = size
    torch.manual_seed(0)
    if impl == "torch":
        lstm = torch.nn.LSTM(1, hidden, layers, batch_first=True)
    else:
        lstm = LSTM(1, hidden, layers, batch_first=True, variant=impl)
    head = torch.nn.Linear(hidden, 1)
    lstm, head = lstm.to(device), head.to(device)
    optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-3)
    x = torch.randn(batch, lookback, 1, device=device)
    y = torch.randn(batch, 1, device=device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        output, _ = lstm(x)
        loss = torch.nn.functional.mse_loss(head(output[:, -1]), y)
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()

    return step


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("impl", ["plain", "fused", "torch"])
def test_lstm_training_step(benchmark, bench_size, impl, device):
    if device == "cuda" and impl == "plain":
        pytest.skip("the plain cell on CUDA is launch-bound; the fused one and cuDNN are compared")
    size = sized(SIZES, bench_size)
    step = _training_step(impl, size, device)
    for _ in range(3):  # warm up: allocator, oneDNN / cuDNN plans
        step()
    batch, lookback, hidden, layers = size
    benchmark.group = f"lstm train step {device} b{batch} L{lookback} h{hidden} x{layers} float32"
    benchmark.extra_info["backend"] = "torch.nn.LSTM" if impl == "torch" else f"scratch {impl}"
    benchmark.extra_info["device"] = device
    benchmark.extra_info["torch_threads"] = torch.get_num_threads()
    rounds, iterations = sized(ROUNDS, bench_size)
    benchmark.pedantic(step, rounds=rounds, iterations=iterations, warmup_rounds=1)


# The speed sweep of fastscratch/compare/sweeps.py: ours (backend="auto") and the reference at
# every point, one axis varied at a time (benchmarks/conftest.py builds the cases).
SWEEP_FAMILIES = ("lstm",)


def test_sweep(benchmark, sweep_case):
    sweep_case.run(benchmark)
