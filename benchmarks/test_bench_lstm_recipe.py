"""One training epoch of LSTMForecaster's recipe vs a bare PyTorch loop, same model and data.

The recipe's epochs (``LSTMForecaster._train``, early stopping with a patience
longer than the run, so every epoch runs) shuffle the
training windows, steps AdamW over mini-batches, sums the loss on the device,
scores the validation windows and keeps a copy of the best weights (early
stopping). The bare loop is the textbook ``zero_grad / forward / MSE /
backward / step`` over the same shuffled mini-batches of the same windows, with
the recipe's optimiser (``torch.optim.AdamW`` with the recipe's learning rate
and weight decay; Adam when ``weight_decay=0``, as the recipe) and the same network (the scratch LSTM, one layer of the recipe's width, linear head
and linear skip), and nothing else. Each timed round runs EPOCHS epochs from
the same initial weights (setting up Adam and the shuffling generator once, in
both); the ratio of the two is the recipe's overhead per epoch (issue 22: at
most 1.05x); ``extra_info["epochs"]`` gives the divisor.

Data: the windows the recipe builds from the electric production series
(seasonal differences, lookback 24, horizon 24, validation tail 10 %). One
PyTorch thread on CPU (see test_bench_lstm.py); on a CUDA machine the same
epoch also runs on the GPU.
"""

import copy

import pytest

torch = pytest.importorskip("torch")

from fastscratch._sizes import sized  # noqa: E402
from fastscratch.datasets import load_electric_production  # noqa: E402
from fastscratch.timeseries.lstm import LSTMForecaster, _ForecastNetwork  # noqa: E402

SIZES = {"tiny": {"hidden_size": 8, "batch_size": 64}, "medium": {}}  # {} = the recipe's defaults
ROUNDS = {"tiny": 2, "medium": 7}
EPOCHS = {"tiny": 2, "medium": 5}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _setup(bench_size, device):
    """The recipe's forecaster (EPOCHS epochs, none stopped early), its training and validation
    windows on ``device`` and a freshly initialised network."""
    epochs = sized(EPOCHS, bench_size)
    model = LSTMForecaster(epochs=epochs, n_iter_no_change=epochs + 1, n_ensemble=1, **sized(SIZES, bench_size))
    model._check_params()
    y = load_electric_production(as_series=False)[:-24]
    (X, Y), (X_val, Y_val) = model._windows(y)
    as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
    data, val = (as_tensor(X), as_tensor(Y)), (as_tensor(X_val), as_tensor(Y_val))
    torch.manual_seed(0)
    network = _ForecastNetwork(model.impl, model.hidden_size, model.num_layers, model.dropout, model.horizon,
                               model.lookback if model.linear_skip else None).to(device)
    return model, network, data, val


def _bare_optimizer(model, network):
    """The recipe's optimiser, built as a bare loop would: AdamW with ``model``'s learning rate and
    weight decay (Adam without weight decay), the choice ``LSTMForecaster._train`` makes."""
    if model.weight_decay:
        return torch.optim.AdamW(network.parameters(), lr=model.learning_rate, weight_decay=model.weight_decay)
    return torch.optim.Adam(network.parameters(), lr=model.learning_rate)


def _bare_epochs(network, data, batch_size, seed, epochs, optimizer):
    """The bare loop: ``epochs`` passes of ``optimizer`` over shuffled mini-batches, nothing else."""
    generator = torch.Generator().manual_seed(seed)
    X, Y = data
    network.train()
    for _ in range(epochs):
        order = torch.randperm(X.shape[0], generator=generator).to(X.device)
        for begin in range(0, X.shape[0], batch_size):
            batch = order[begin: begin + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(network(X[batch]), Y[batch])
            loss.backward()
            optimizer.step()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("loop", ["recipe", "bare torch"])
def test_lstm_recipe_epoch(benchmark, bench_size, loop, device):
    model, network, data, val = _setup(bench_size, device)
    batch_size = min(model.batch_size, data[0].shape[0])

    def epoch(net):
        if loop == "recipe":
            model._train(net, data, val, seed=0)
        else:
            _bare_epochs(net, data, batch_size, 0, model.epochs, _bare_optimizer(model, net))
        if device == "cuda":
            torch.cuda.synchronize()

    def fresh():  # every round starts from the same weights, copied outside the timing
        return (copy.deepcopy(network),), {}

    epoch(*fresh()[0])  # warm up: allocator, oneDNN / cuDNN plans
    benchmark.group = (f"lstm recipe epoch {device} {data[0].shape[0]} windows h{model.hidden_size} "
                       f"x{model.num_layers} batch {batch_size}")
    benchmark.extra_info["loop"] = loop
    benchmark.extra_info["epochs"] = model.epochs
    benchmark.extra_info["torch_threads"] = torch.get_num_threads()
    benchmark.pedantic(epoch, setup=fresh, rounds=sized(ROUNDS, bench_size), iterations=1, warmup_rounds=1)
