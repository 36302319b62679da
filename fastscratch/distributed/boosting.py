"""Gradient boosting on Dask: each worker keeps its rows from the first tree to the last.

The fit of a Dask X (n rows in blocks) on a cluster of S workers:

1. cut points on the client, from the rows the in-memory
   :class:`~fastscratch.boosting.binning.BinMapper` would sample; every block
   binned where it is (one task per block);
2. the blocks cut into S runs of consecutive blocks with about equal rows, and
   on each worker one :class:`BoostingShard` (a Dask actor) that takes its
   run's bins, targets and weights and keeps them, with the margins, the
   gradients and the current tree's row order, until the fit ends;
3. every tree grown by the in-memory
   :class:`~fastscratch.boosting.grower.TreeGrower` on the client, its rows
   being a :class:`ShardedRows` source: a level is *one call per shard*, which
   partitions the shard's rows by the splits chosen at the previous level and
   returns the histograms of the nodes to build (all nodes of the level in one
   kernel call); the client adds the shards' histograms (in shard order), and
   chooses every node's split once, with the in-memory code (split search,
   subtraction trick, node numbering, leaf values). The leaf values reach the
   shards' margins, and the next round's gradients are computed there, in the
   call that builds the next tree's root.

So a tree of depth D costs D round trips to the shards (D + S with missing
values: the root's row-order sums pass from shard to shard), whatever the
number of nodes. The class trees of a multiclass round grow together, B at
a time (the client's growers pause at their requests, and one call per
shard serves the requests of all B): the round's gradients and its K roots
in one call (one pass), then one call per level and group of B trees, so
(K / B) (D - 1) + 1 calls per round, not K (D - 1) + 1. B is K while one
call's histograms stay within ``CALL_HISTOGRAM_BYTES`` per shard and the
client's histogram buffers within ``POOL_HISTOGRAM_BYTES`` (10 classes of
depth 6 and 28 features: B = 10, D calls per round; see
:func:`_trees_at_once`). Row and column subsampling are drawn
on the client from the in-memory fit's sampler, in the same order (each
shard gets its slice of a tree's row sample), so they give the in-memory
trees too. The data never leave their workers after the shards are made.
The calls go over one socket per shard
(``multiprocessing.connection``, authenticated), not through the scheduler;
through Dask's actor calls when the client cannot reach the workers'
sockets. Without a ``distributed`` client the one shard lives in this
process.
"""

import collections
import contextlib
import operator
import secrets
import socket
import threading
import time

import dask
import dask.array as da
import numpy as np
from sklearn.utils import check_random_state

from .. import boosting as _boosting
from .._backend import effective_n_threads, resolve_kernel
from .._config import config_context, get_config
from ..boosting.binning import BinMapper
from ..boosting.categorical import CategoricalSplits, category_cuts, encode_frame
from ..boosting.constraints import parse_constraints
from ..boosting.grower import HistogramBuffers, TreeGrower
from ..boosting.predictor import Forest
from ..boosting.training import POOL_HISTOGRAM_BYTES, BoostResult, Sampler, Training
from ._common import (
    _aligned,
    _blocks,
    _checked_X,
    _classes_and_codes,
    _DaskPredictMixin,
    _delayed,
    _numeric_target,
    _set_feature_names,
    _ShapeOnly,
    _sum_combine,
    _tree_reduce,
    is_dask_collection,
)

SOCKET_TIMEOUT = 20  # seconds to reach a shard's socket before falling back to Dask calls
# Histogram bytes one call may build on a shard for the class trees growing together (the size
# of its buffer and of its answer). 10 classes of depth 6 (28 features: 1.8 MB per tree and
# level), 200k rows, 10 rounds, 2 workers, medians of 5 on a shared 2-core machine: all 10
# trees at once used the least CPU (workers 1.71 s, client 0.94 s; one tree at a time: 1.85 s
# and 0.97 s), while the wall times (4.12 s against 3.64 s) favoured small calls there, whose
# short bursts the busy machine preempted less.
CALL_HISTOGRAM_BYTES = 32 << 20
SHARD_KERNELS = ("build_histograms", "build_class_histograms", "partition_rows",
                 "partition_rows_categorical", "add_leaf_values")


def _bin_block(X, binner):
    """One block's bins (uint8) and whether it has a missing value (NaN)."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    return binner.transform(X), bool(np.isnan(X).any())


def _category_summary(X, features):
    """One block's categorical features checked as in memory (``category_cuts``), and per
    feature its largest code (NaN: none) and whether it has a missing value: ``(k, 2)``."""
    X = np.asarray(X, dtype=np.float32)
    out = np.empty((len(features), 2))
    for j, f in enumerate(features):
        category_cuts(X[:, f])  # the in-memory checks (non-negative integer codes, at most 256)
        present = X[:, f][~np.isnan(X[:, f])]
        out[j] = (present.max() if present.size else np.nan, present.size < X.shape[0])
    return out


def _combined_category_cuts(summaries, features):
    """The categorical features' ``(cuts, min)`` over every block (their largest code and
    whether any is missing), with the in-memory limits (``category_cuts`` of a column with
    that largest code and that missing value)."""
    summaries = np.stack(summaries)  # (blocks, k, 2)
    cuts = {}
    for j, f in enumerate(features):
        largest = summaries[:, j, 0][~np.isnan(summaries[:, j, 0])]
        column = [largest.max()] if largest.size else []
        if summaries[:, j, 1].any():
            column.append(np.nan)
        cuts[f] = category_cuts(np.array(column, dtype=np.float32))
    return cuts


def _class_weight_totals(codes, weights, n_classes):
    return (np.bincount(codes, weights=weights, minlength=n_classes).astype(np.float64),)


def _take_rows(X, indices):
    return np.asarray(X)[indices]


def _gather_rows(blocks, sizes, indices):
    """Rows ``indices`` (sorted, global) of a blocked array, in memory."""
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    owner = np.searchsorted(offsets, indices, side="right") - 1
    parts = [_delayed(_take_rows, pure=True)(blocks[o], indices[owner == o] - offsets[o])
             for o in np.unique(owner)]
    return np.concatenate(dask.compute(*parts))


def contiguous_runs(sizes, n_runs):
    """Block index ranges ``[(first, stop), ...]``: at most ``n_runs`` runs of consecutive blocks.

    A block goes to the run of its middle row (runs of about ``n / n_runs``
    rows each); runs without rows are dropped (their blocks are empty). The
    runs depend on the block sizes and ``n_runs`` only, never on where Dask
    placed the blocks, so a fit on the same cluster size gives the same trees.
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    middles = np.cumsum(sizes) - sizes / 2
    owner = np.minimum((middles * n_runs // sizes.sum()).astype(np.intp), n_runs - 1)
    runs = []
    for run in range(n_runs):
        members = np.flatnonzero(owner == run)
        if members.size and sizes[members].sum() > 0:
            runs.append((int(members[0]), int(members[-1]) + 1))
    return runs


class BoostingShard:
    """One worker's rows of a Dask boosting fit, kept there from the first tree to the last.

    Made once per fit on its worker (a Dask actor; in this process without a
    ``distributed`` client) from the blocks of one run of consecutive rows;
    the client drives it with :meth:`step`.

    Parameters
    ----------
    config : dict
        The client's fastscratch configuration (backend, n_jobs), in force in
        every call (:func:`fastscratch.set_config` is thread-local).
    backend : str
        The estimator's ``backend``; the kernels are resolved once, here.
    loss : objective of :mod:`fastscratch.boosting.loss`
    n_bins : ndarray of shape (d,), intp
    base_margin : ndarray of shape (n_groups,), float32
    n_threads : int
        Threads of this shard's kernels.
    n_blocks : int
    has_weights : bool
    *blocks : ndarrays
        The run's binned blocks (uint8), then its targets, then (with
        ``has_weights``) its weights, ``n_blocks`` of each, in row order.

    Notes
    -----
    The shard holds its ``n_s`` rows' bins row-major (``binned``, read by the
    histograms) and column-major (``binned_columns``, read by the
    partitions), the margins :math:`F` (``raw``, one row per output group),
    the gradients :math:`g` and hessians :math:`h` of the round, and for
    each output group ``k`` growing a tree its row order ``rows[k]``, in which
    every node of that tree owns a segment ``segments[k][key] = (start,
    stop)`` (the class trees of a round grow at the same time; a finished
    tree's array serves the next one, so there are as many as trees growing
    together). A node's ``key`` is its place
    ``(a, b)`` in the client grower's virtual row range (see
    :class:`ShardedRows`): splitting ``(a, b)`` sends the node's rows with
    ``bin <= split bin`` (and the missing ones when ``default_left``) to
    ``(a, (a + b) // 2)``, the others to ``((a + b) // 2, b)``. The kernels
    are the in-memory ones (``partition_rows``, ``build_histograms``,
    ``add_leaf_values``), so a shard's histograms are the in-memory
    histograms of its rows.
    """

    def __init__(self, config, backend, loss, n_bins, base_margin, n_threads, n_blocks,
                 has_weights, *blocks):
        self.config, self.backend = dict(config), backend
        with config_context(**self.config):
            self.kernels = {name: resolve_kernel(name, backend)[0] for name in SHARD_KERNELS}
        self.loss, self.n_threads = loss, int(n_threads)
        self.n_bins = np.asarray(n_bins, dtype=np.intp)
        self.n_slots = int(self.n_bins.max()) + 1
        self.binned = np.ascontiguousarray(np.concatenate(blocks[:n_blocks]))
        self.binned_columns = np.asfortranarray(self.binned)
        self.y = np.ascontiguousarray(np.concatenate(blocks[n_blocks:2 * n_blocks]),
                                      dtype=np.float32)
        if hasattr(loss, "check_target"):
            loss.check_target(self.y)
        self.weights = (np.ascontiguousarray(np.concatenate(blocks[2 * n_blocks:3 * n_blocks]),
                                             dtype=np.float32) if has_weights else None)
        n, groups = self.binned.shape[0], base_margin.shape[0]
        self.raw = np.empty((groups, n), dtype=np.float32)
        self.raw[:] = np.asarray(base_margin, dtype=np.float32)[:, None]
        self.gradients = np.empty((groups, n), dtype=np.float32)
        self.hessians = np.empty((groups, n), dtype=np.float32)
        self.identity = np.arange(n, dtype=np.intp)
        self.rows = {}  # group -> its current tree's row order
        self.free_rows = []  # row-order arrays of finished trees, for the next ones
        self.segments = {}  # group -> {node key: (start, stop) in rows[group]}
        self.n_root_rows = {}  # group -> rows in its current tree's root (row subsampling)
        self.scratch = np.empty(n, dtype=np.intp)
        self.seconds = collections.defaultdict(float)

    def step(self, ops):
        """Run ``ops`` (a list of ``(name, *arguments)``) in order; returns what they computed.

        Names: ``("add_leaves", group, starts, stops, values)``, ``("add_tree",
        group, tree)``, ``("compute_gradients",)``, ``("begin_tree", group,
        root_key, mask)``, ``("partition", group, keys, features, split_bins,
        default_lefts)``, ``("build", group, keys)``, ``("build_roots",)``,
        ``("row_order_sums", groups, previous)``; see the methods of the same
        names. The histograms of the builds, in op order, one after another
        in one array (this shard's reused buffer, valid until the next call:
        fresh memory for every level cost page faults), else what the last
        op returned (None when none returns anything).
        """
        counts = [len(op[2]) if op[0] == "build" else self.raw.shape[0] if op[0] == "build_roots"
                  else 0 for op in ops]
        hists = self._histogram_space(sum(counts)) if sum(counts) else None
        out, offset = None, 0
        with config_context(**self.config):
            for (name, *arguments), count in zip(ops, counts):
                began = time.perf_counter()
                if count:
                    arguments = (*arguments, hists[offset:offset + count])
                    offset += count
                result = getattr(self, name)(*arguments)
                self.seconds[name] += time.perf_counter() - began
                if result is not None:
                    out = result
        return hists if hists is not None else out

    def _histogram_space(self, n_nodes):
        """Room for ``n_nodes`` histograms, ``(n_nodes, d, n_slots, 2)`` float64, in a buffer
        kept from call to call (it only grows)."""
        shape = (n_nodes, self.binned.shape[1], self.n_slots, 2)
        size = int(np.prod(shape))
        if getattr(self, "_histograms", None) is None or self._histograms.shape[0] < size:
            self._histograms = None  # free the smaller one first
            self._histograms = np.empty(size, dtype=np.float64)
        return self._histograms[:size].reshape(shape)

    def compute_gradients(self):
        """The round's :math:`g, h` of every group at the current margins."""
        if self.raw.shape[0] == 1:
            self.loss.gradients(self.y, self.raw[0], self.weights, self.gradients[0],
                                self.hessians[0])
        else:
            self.loss.gradients(self.y, self.raw, self.weights, self.gradients, self.hessians)

    def begin_tree(self, group, root_key, mask=None):
        """A new tree of ``group``: its root holds every row (in row order), or with ``mask``
        (this shard's slice of the tree's row sample, ``np.packbits``) the sampled rows in row
        order, the others after them (as the in-memory ``Sampler.sample_rows``)."""
        if group in self.rows:
            rows = self.rows[group]
        else:  # as many arrays as trees growing together: a finished tree's is reused
            rows = self.rows[group] = (self.free_rows.pop() if self.free_rows
                                       else np.empty(self.identity.shape[0], dtype=np.intp))
        if mask is None:
            np.copyto(rows, self.identity)
            n_root = rows.shape[0]
        else:
            chosen = np.unpackbits(mask, count=rows.shape[0]).view(bool)
            n_root = int(np.count_nonzero(chosen))
            rows[:n_root] = self.identity[chosen]
            rows[n_root:] = self.identity[~chosen]
        self.segments[group] = {root_key: (0, n_root)}
        self.n_root_rows[group] = n_root

    def _segments(self, group, keys):
        segments = self.segments[group]
        pairs = np.array([segments[key] for key in keys], dtype=np.intp).reshape(-1, 2)
        return np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1])

    def partition(self, group, keys, features, split_bins, default_lefts):
        """The rows of group ``group``'s nodes ``keys`` left then right (``partition_rows``),
        and their children's segments."""
        starts, stops = self._segments(group, keys)
        n_left = np.empty(len(keys), dtype=np.intp)
        self.kernels["partition_rows"](self.binned_columns, self.rows[group], starts, stops,
                                       features, split_bins, default_lefts, self.n_bins,
                                       self.scratch, n_left, self.n_threads)
        self._split_segments(group, keys, starts, stops, n_left)

    def _split_segments(self, group, keys, starts, stops, n_left):
        """The children's segments of the nodes ``keys`` just partitioned: left then right."""
        segments = self.segments[group]
        for (a, b), start, stop, count in zip(keys, starts, stops, n_left):
            middle = a + (b - a) // 2
            del segments[(a, b)]
            segments[(a, middle)] = (int(start), int(start + count))
            segments[(middle, b)] = (int(start + count), int(stop))

    def partition_categorical(self, group, keys, features, sets, default_lefts):
        """As :meth:`partition`, for nodes split on a category set (``sets[j, c] = 1``: code
        ``c`` goes right; ``partition_rows_categorical``)."""
        starts, stops = self._segments(group, keys)
        n_left = np.empty(len(keys), dtype=np.intp)
        self.kernels["partition_rows_categorical"](
            self.binned_columns, self.rows[group], starts, stops, features, sets, default_lefts,
            self.n_bins, self.scratch, n_left, self.n_threads)
        self._split_segments(group, keys, starts, stops, n_left)

    def build(self, group, keys, out):
        """Histograms (float64, ``(len(keys), d, n_slots, 2)``) of group ``group`` of the nodes
        ``keys``, into ``out``."""
        starts, stops = self._segments(group, keys)
        self.kernels["build_histograms"](self.binned, self.rows[group], starts, stops,
                                         self.gradients[group], self.hessians[group], out,
                                         self.n_threads)

    def build_roots(self, out):
        """The roots' histograms of every group, ``(n_groups, d, n_slots, 2)``, into ``out``: one
        pass for a multiclass round."""
        self.kernels["build_class_histograms"](self.binned, self.identity, 0, self.binned.shape[0],
                                               self.gradients, self.hessians, out, self.n_threads)

    def add_leaves(self, group, starts, stops, values):
        """Margins of group ``group`` plus the tree's leaf values; leaves given by their keys' bounds."""
        local_starts, local_stops = self._segments(group, list(zip(starts, stops)))
        self.kernels["add_leaf_values"](self.rows[group], local_starts, local_stops,
                                        np.asarray(values, dtype=np.float32), self.raw[group],
                                        self.n_threads)
        self._end_tree(group)

    def _end_tree(self, group):
        """Group ``group``'s tree is done: its row order is free for the next tree."""
        self.free_rows.append(self.rows.pop(group))
        del self.segments[group]

    def add_tree(self, group, tree):
        """Margins of group ``group`` plus the tree's value at every row, walking the tree (a
        tree grown from a row sample, whose leaves do not hold every row), as in memory."""
        single = Forest(n_groups=1)
        single.add_tree(tree, np.zeros(tree["feature"].shape[0], dtype=np.float32))
        self.raw[group] += single.predict_binned(self.binned, self.n_bins, 0.0, self.backend,
                                                 self.n_threads)[:, 0].astype(np.float32)
        self._end_tree(group)

    def row_order_sums(self, groups, previous):
        """``previous`` (float64 g and h sums per group, ``(len(groups), 2)``) plus this shard's
        root rows of each group, added one row at a time in order.

        Chained shard after shard, this is the in-memory grower's root sum with
        missing values (``np.add.accumulate(g, dtype=float64)[-1]`` over the
        root's rows in order), to the same bits.
        """
        sums = np.empty((len(groups), 2))
        for j, group in enumerate(groups):
            root = self.rows[group][:self.n_root_rows[group]]
            sampled = root.shape[0] < self.identity.shape[0]
            for i, values in enumerate((self.gradients[group], self.hessians[group])):
                running = np.empty(root.shape[0] + 1)
                running[0] = previous[j][i]
                running[1:] = values[root] if sampled else values
                sums[j, i] = np.add.accumulate(running)[-1]
        return sums

    def profile(self):
        """Seconds spent in each step of this shard, and its number of rows."""
        return dict(self.seconds, rows=int(self.binned.shape[0]))

    def listen(self, host, authkey):
        """Open a socket on ``host`` for the client's calls (see :meth:`serve`); returns its address."""
        from multiprocessing.connection import Listener

        self.listener = Listener((host, 0), authkey=authkey)
        return self.listener.address

    def serve(self):
        """Answer the client's calls on the socket until it sends None or goes away.

        A call is ``(method, arguments)``; the answer ``("array", shape,
        dtype)`` followed by the array's bytes, ``("value", result)`` or
        ``("error", exception)``. A level costs one message each way, with no
        scheduler in between (as xgboost.dask's own sockets).
        """
        try:
            with self.listener.accept() as connection:
                while True:
                    try:
                        message = connection.recv()
                    except (EOFError, OSError):
                        return
                    if message is None:
                        return
                    method, arguments = message
                    try:
                        result = getattr(self, method)(*arguments)
                    except Exception as exc:  # noqa: BLE001 - handed to the client, which raises it
                        connection.send(("error", exc))
                        continue
                    if isinstance(result, np.ndarray):
                        connection.send(("array", result.shape, result.dtype.str))
                        connection.send_bytes(np.ascontiguousarray(result))
                    else:
                        connection.send(("value", result))
        finally:
            self.listener.close()


class _Shards:
    """The shards of one fit and calls to all of them: over sockets to the workers, or here.

    ``connections``: one ``multiprocessing.connection`` per shard (each shard
    answering in :meth:`BoostingShard.serve`), or None: shards in this process
    (called directly) or, with ``actors``, Dask actors called through Dask
    (when the client cannot reach the workers' sockets).
    """

    def __init__(self, handles, connections=None, actors=False):
        self.handles, self.connections, self.actors = handles, connections, actors
        self.round_trips, self.wait_seconds = 0, 0.0
        self.buffers = [np.empty(0, dtype=np.uint8) for _ in handles]

    def __len__(self):
        return len(self.handles)

    def _receive(self, i):
        """Shard ``i``'s answer. An array lands in a buffer kept for that shard (fresh memory
        for every level cost page faults): it is valid until the next call."""
        connection = self.connections[i]
        kind, *rest = connection.recv()
        if kind == "array":
            dtype = np.dtype(rest[1])
            size = int(np.prod(rest[0])) * dtype.itemsize
            if self.buffers[i].shape[0] < size:
                self.buffers[i] = None  # free the smaller one first
                self.buffers[i] = np.empty(size, dtype=np.uint8)
            connection.recv_bytes_into(self.buffers[i][:size])
            return self.buffers[i][:size].view(dtype).reshape(rest[0])
        if kind == "error":
            raise rest[0]
        return rest[0]

    def call(self, method, *arguments, only=None):
        """``method(*arguments)`` on every shard (or on shard ``only``); the results in shard order.

        Every shard gets the call before any answer is read, so they run at once.
        An argument that is a :class:`PerShard` is replaced by its shard's item,
        also inside a list of ops (``step``'s).
        """
        began = time.perf_counter()
        indices = range(len(self.handles)) if only is None else [only]
        calls = [(i, tuple(PerShard.pick(argument, i) for argument in arguments))
                 for i in indices]
        if self.connections is None:
            results = [getattr(self.handles[i], method)(*shard_arguments)
                       for i, shard_arguments in calls]
            if self.actors:  # the calls ran at once on the workers: wait for them
                results = [result.result() for result in results]
        else:
            for i, shard_arguments in calls:
                self.connections[i].send((method, shard_arguments))
            results = [self._receive(i) for i in indices]
        self.round_trips += 1
        self.wait_seconds += time.perf_counter() - began
        return results

    def close(self):
        """End the shards' :meth:`~BoostingShard.serve` loops (their actors go with their futures)."""
        for connection in self.connections or []:
            try:
                connection.send(None)
                connection.close()
            except OSError:
                pass
        self.connections = None
        for served in getattr(self, "served", []):
            with contextlib.suppress(Exception):  # a shard that died raised in call() already
                served.result()


class PerShard:
    """An argument of a shard call that differs by shard: shard ``i`` gets ``items[i]``."""

    def __init__(self, items):
        self.items = items

    @staticmethod
    def pick(argument, i):
        """``argument`` as shard ``i`` sees it (also inside a list of op tuples)."""
        if isinstance(argument, PerShard):
            return argument.items[i]
        if isinstance(argument, list):
            return [tuple(PerShard.pick(a, i) for a in op) if isinstance(op, tuple) else op
                    for op in argument]
        return argument


class _Paused(Exception):
    """Raised in a paused grower (:class:`_GrowerThread`) to unwind it when the fit fails."""


class _GrowerThread:
    """A tree grower run as a coroutine: it pauses at every request to the shards.

    :meth:`run_until_request` lets the grower run until it needs an answer
    from the shards (``request``) or its tree is done (``tree``); the answer
    goes back with the next :meth:`run_until_request`. Only one grower runs
    at any time (the caller waits), so the client's kernels are never called
    from two threads at once, and every grower computes what it would alone.
    """

    def __init__(self, grow):
        self._grow, self._turn, self._back = grow, threading.Semaphore(0), threading.Semaphore(0)
        self.request = self.answer = self.tree = self.error = None
        self.done = False
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="fastscratch-dask-tree")

    def _run(self):
        self._turn.acquire()
        try:
            if not isinstance(self.answer, _Paused):
                self.tree = self._grow()
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            self.error = exc
        finally:
            self.done = True
            self._back.release()

    def ask(self, request):
        """From the grower's thread: hand ``request`` to the caller, and wait for its answer."""
        self.request = request
        self._back.release()
        self._turn.acquire()
        if isinstance(self.answer, _Paused):
            raise self.answer
        return self.answer

    def run_until_request(self, answer=None):
        """Let the grower run (with ``answer`` to its last request) until it asks again or ends."""
        if not self._thread.is_alive() and not self.done:
            self._thread.start()
        self.answer, self.request = answer, None
        self._turn.release()
        self._back.acquire()
        if self.error is not None:
            raise self.error

    def stop(self):
        """Unwind a grower that is waiting for an answer (the fit failed elsewhere); in any
        case, wait for its thread to end."""
        if not self.done:
            if not self._thread.is_alive():
                self._thread.start()
            self.answer = _Paused()
            self._turn.release()
            self._back.acquire()
        if self._thread.ident is not None:
            self._thread.join()


class ShardedRows:
    """The rows of a Dask boosting fit, on its shards: the grower's ``source`` for every tree.

    The grower places every node in a row range ``[start, stop)`` and needs
    the left child's size to place the children. Here that range is virtual:
    the root spans ``VIRTUAL_ROWS`` and a split node's children its two
    halves (``n_left`` is half the node), while each shard keeps where the
    node's rows really are (:class:`BoostingShard`). So a partition needs no
    answer: it is queued, and sent with the next call, the one that builds
    the next level's histograms. Trees deeper than 61 levels (possible with
    ``max_depth=0``) cannot be placed and raise a ValueError.

    Several trees (the class trees of a multiclass round) grow together
    (:meth:`grow_together`): each grower runs until it needs histograms or
    root sums, and the requests of all of them go to the shards in one call.
    ``B`` class trees of depth ``D`` then cost ``D - 1`` calls after their
    roots, not ``B (D - 1)``.

    Parameters
    ----------
    shards : _Shards
    row_ranges : list of (start, stop)
        Each shard's rows in the global row order (shard order is row order).
    n_slots : int
        Histogram slots per feature (most bins + 1), the width of a category set.
    """

    VIRTUAL_ROWS = 1 << 62
    ROOT = (0, VIRTUAL_ROWS)

    def __init__(self, shards, row_ranges, n_slots):
        self.shards, self.row_ranges, self.n_slots = shards, row_ranges, n_slots
        self.pending = []
        self.running = None  # the _GrowerThread whose grower is running, while trees grow together

    def begin_round(self):
        """The round's gradients, from the margins (sent with the next call)."""
        self.pending.append(("compute_gradients",))

    def begin_tree(self, group, mask=None):
        """Queue a new tree of output group ``group``; ``mask`` (bool, every row): its row sample."""
        if mask is not None:
            mask = PerShard([np.packbits(mask[start:stop]) for start, stop in self.row_ranges])
        self.pending.append(("begin_tree", group, self.ROOT, mask))

    def tree(self, group):
        """The ``source`` of the grower of group ``group``'s tree."""
        return _TreeRows(self, group)

    def build_roots(self, out):
        """The roots of all groups' trees of this round summed over the shards into ``out``
        (one pass over each shard's rows, as the in-memory multiclass round)."""
        self._sum_into([out], [out.shape[0]], self.shards.call(
            "step", self._take_pending() + [("build_roots",)]))

    def _take_pending(self):
        ops, self.pending = self.pending, []
        return ops

    @staticmethod
    def _sum_into(outs, counts, parts):
        """Each shard's concatenated histograms ``parts`` added in shard order into ``outs``."""
        offset = 0
        for out, count in zip(outs, counts):
            rows = slice(offset, offset + count)
            if len(parts) == 1:
                np.copyto(out, parts[0][rows])
            else:  # one pass for the first two shards: (shard 0 + shard 1) + shard 2 + ...
                np.add(parts[0][rows], parts[1][rows], out=out)
            for part in parts[2:]:
                out += part[rows]
            offset += count

    def grow_together(self, growers):
        """Grow the trees of ``growers`` (TreeGrower on ``tree(group)`` sources) together:
        one call to the shards serves the requests of all of them. Returns their trees."""
        if len(growers) == 1:
            return [growers[0].grow()]
        threads = [_GrowerThread(grower.grow) for grower in growers]
        try:
            answers = [None] * len(threads)
            while True:
                for thread, answer in zip(threads, answers):
                    if not thread.done:
                        self.running = thread
                        thread.run_until_request(answer)
                self.running = None
                waiting = [thread for thread in threads if not thread.done]
                if not waiting:
                    return [thread.tree for thread in threads]
                results = self.execute([thread.request for thread in waiting])
                answers = [None] * len(threads)
                for thread, result in zip(waiting, results):
                    answers[threads.index(thread)] = result
        finally:
            self.running = None
            for thread in threads:
                thread.stop()

    def request(self, request):
        """A grower's request: answered now, or with the other growers' (:meth:`grow_together`)."""
        if self.running is not None:
            return self.running.ask(request)
        return self.execute([request])[0]

    def execute(self, requests):
        """Answer the requests ``("build", group, keys, out)`` and ``("sums", group)`` of the
        growers with one call per shard (the builds, with what is queued) or one chain of calls
        (the root sums of every group asking for them); the answers in request order."""
        answers = [None] * len(requests)
        builds = [r for r in requests if r[0] == "build"]
        if builds:
            ops = self._take_pending() + [("build", group, keys) for _, group, keys, _ in builds]
            self._sum_into([out for *_, out in builds], [len(keys) for _, _, keys, _ in builds],
                           self.shards.call("step", ops))
        sums = [i for i, r in enumerate(requests) if r[0] == "sums"]
        if sums:
            groups = [requests[i][1] for i in sums]
            # The rows in order, shard after shard: each shard adds its rows to the running
            # sums (the queued ops go to each shard with its call of the chain).
            ops, total = self._take_pending(), np.zeros((len(groups), 2))
            for index in range(len(self.shards)):
                total = self.shards.call("step", ops + [("row_order_sums", groups, total)],
                                         only=index)[0].copy()
            for j, i in enumerate(sums):
                answers[i] = total[j]
        return answers

    def add_leaves(self, group, tree, sampled=False):
        """Queue the tree's values for the shards' margins (walking the tree when ``sampled``)."""
        if sampled:
            self.pending.append(("add_tree", group, {
                name: tree[name] for name in ("feature", "bin", "default_left", "left", "right",
                                              "value", "gain", "cover", "categories")}))
            return
        starts, stops, values = tree["leaf_segments"]
        self.pending.append(("add_leaves", group, [int(a) for a in starts],
                             [int(b) for b in stops], values))

    def flush(self):
        """Send what is queued (at the end of the fit)."""
        if self.pending:
            self.shards.call("step", self._take_pending())


class _TreeRows:
    """One tree's view of :class:`ShardedRows`: the :class:`TreeGrower` ``source`` protocol."""

    def __init__(self, rows, group):
        self.rows, self.group = rows, group

    @staticmethod
    def _keys(nodes):
        return [(int(node.start), int(node.stop)) for node in nodes]

    def build_histograms(self, nodes, out):
        """The nodes' histograms summed over the shards (in shard order) into ``out``."""
        self.rows.request(("build", self.group, self._keys(nodes), out))

    def partition(self, nodes):
        """Queue the nodes' splits; each node's ``n_left`` is half its virtual range."""
        keys = self._keys(nodes)
        for node, (a, b) in zip(nodes, keys):
            if b - a < 2:
                raise ValueError("a tree deeper than 61 levels cannot be grown on Dask input; "
                                 "set max_depth (or max_leaves) or fit in memory.")
            node.n_left = (b - a) // 2
        numeric = [j for j, node in enumerate(nodes) if node.split.categories is None]
        if numeric:
            self.rows.pending.append((
                "partition", self.group, [keys[j] for j in numeric],
                np.array([nodes[j].split.feature for j in numeric], dtype=np.intp),
                np.array([nodes[j].split.bin for j in numeric], dtype=np.intp),
                np.array([nodes[j].split.default_left for j in numeric], dtype=np.uint8)))
        chosen = [j for j, node in enumerate(nodes) if node.split.categories is not None]
        if chosen:  # split on a category set (categorical features)
            sets = np.zeros((len(chosen), self.rows.n_slots), dtype=np.uint8)
            for row, j in enumerate(chosen):
                mask = nodes[j].split.categories
                sets[row, :mask.shape[0]] = mask
            self.rows.pending.append((
                "partition_categorical", self.group, [keys[j] for j in chosen],
                np.array([nodes[j].split.feature for j in chosen], dtype=np.intp), sets,
                np.array([nodes[j].split.default_left for j in chosen], dtype=np.uint8)))

    def row_order_sums(self):
        """The root's (gradient, hessian) sums over its rows in order, chained shard after shard."""
        return self.rows.request(("sums", self.group))


def _distributed_client():
    """The ``distributed`` client that runs Dask's computations here, or None.

    None also when ``dask.config`` names another scheduler (``"threads"``,
    ``"synchronous"``, ...): the fit then runs in this process.
    """
    if dask.config.get("scheduler", None) not in (None, "dask.distributed", "distributed"):
        return None
    try:
        from distributed import default_client
        return default_client()
    except (ImportError, ValueError):
        return None


def _make_shards(bins, y_blocks, w_blocks, sizes, shard_arguments, n_jobs):
    """The shards of a fit, and whether X has a missing value.

    ``bins``: one delayed ``_bin_block`` per block; ``shard_arguments``: the
    leading arguments of :class:`BoostingShard` (config, backend, loss,
    n_bins, base_margin). With a ``distributed`` client the shards are actors,
    one per worker and run of blocks (:func:`contiguous_runs`), each on the
    worker that holds most of its rows already; their kernels use the
    worker's threads unless ``n_jobs`` is set (as xgboost.dask). Without one,
    a single shard in this process.
    """
    client = _distributed_client()
    has_weights = w_blocks is not None
    w_blocks = w_blocks or []
    n = len(sizes)
    if client is None:
        computed = dask.compute(*bins, *y_blocks, *w_blocks)
        binned = [pair[0] for pair in computed[:n]]
        has_missing = any(pair[1] for pair in computed[:n])
        shard = BoostingShard(*shard_arguments, effective_n_threads(n_jobs), n, has_weights,
                              *binned, *computed[n:])
        shards = _Shards([shard])
        shards.row_ranges = [(0, int(sum(sizes)))]
        return shards, has_missing

    from distributed import wait

    pairs = client.compute(bins)
    binned = [client.submit(operator.getitem, pair, 0, pure=False) for pair in pairs]
    flags = [client.submit(operator.getitem, pair, 1, pure=False) for pair in pairs]
    y_futures = client.compute(y_blocks)
    w_futures = client.compute(w_blocks) if has_weights else []
    has_missing = any(client.gather(flags))  # also raises the blocks' errors (infinity in X)
    wait(binned + y_futures + w_futures)
    workers = client.scheduler_info()["workers"]
    holders = client.who_has(binned)
    free = sorted(workers)
    submitted, chosen = [], []
    runs = contiguous_runs(sizes, len(workers))
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    row_ranges = [(int(offsets[first]), int(offsets[stop])) for first, stop in runs]
    for first, stop in runs:
        rows_on = collections.Counter()
        for i in range(first, stop):
            for address in holders.get(binned[i].key, ()):
                rows_on[address] += sizes[i]
        worker = max(free, key=lambda address: (rows_on[address], -free.index(address)))
        free.remove(worker)
        chosen.append(worker)
        n_threads = (workers[worker]["nthreads"] if n_jobs is None
                     else effective_n_threads(n_jobs))
        blocks = [*binned[first:stop], *y_futures[first:stop],
                  *(w_futures[first:stop] if has_weights else [])]
        submitted.append(client.submit(BoostingShard, *shard_arguments, n_threads, stop - first,
                                       has_weights, *blocks, workers=[worker],
                                       allow_other_workers=False, actor=True, pure=False))
    from distributed.comm import get_address_host, parse_address

    actors = [future.result() for future in submitted]
    authkey = secrets.token_bytes(32)
    hosts = [get_address_host(address) if parse_address(address)[0] in ("tcp", "tls")
             else "127.0.0.1" for address in chosen]
    addresses = [actor.listen(host, authkey).result() for actor, host in zip(actors, hosts)]
    try:
        sockets = [_open_socket(address) for address in addresses]
    except OSError:  # the workers' ports cannot be reached from here: calls through Dask
        shards = _Shards(actors, actors=True)
        shards.futures = submitted  # an actor lives as long as its future
        shards.row_ranges = row_ranges
        return shards, has_missing
    served = [actor.serve() for actor in actors]
    connections = [_authenticated(sock, authkey) for sock in sockets]
    shards = _Shards(actors, connections)
    shards.futures, shards.served = submitted, served  # an actor lives as long as its future
    shards.row_ranges = row_ranges
    return shards, has_missing


def _open_socket(address, timeout=SOCKET_TIMEOUT):
    """A TCP connection to a shard's listener; OSError when it cannot be reached in ``timeout`` s."""
    sock = socket.create_connection(address, timeout=timeout)
    sock.settimeout(None)
    return sock


def _authenticated(sock, authkey):
    """``multiprocessing.connection.Client``'s connection over ``sock``, after its HMAC handshake."""
    from multiprocessing.connection import (
        Connection,
        answer_challenge,
        deliver_challenge,
    )

    connection = Connection(sock.detach())
    answer_challenge(connection, authkey)
    deliver_challenge(connection, authkey)
    return connection


def _trees_at_once(model, n_groups, n_features, n_slots, n_samples):
    """How many class trees of a round grow together (one call per level serves them all).

    At most what keeps one call's histograms within :data:`CALL_HISTOGRAM_BYTES`
    on each shard (the built nodes of a tree's deepest level, ``2**(max_depth -
    2)``, one node per call with lossguide), and the trees' histogram buffers on
    the client within ``POOL_HISTOGRAM_BYTES`` (two levels of the widest
    level each), as in memory; at least one.
    """
    node_bytes = n_features * n_slots * 2 * 8
    max_depth = model._resolved("max_depth")
    widest = n_samples if max_depth <= 0 else min(n_samples, 2 ** (max_depth - 1))
    if model._resolved("grow_policy") == "lossguide":
        built = 1
        if model._resolved("max_leaves") > 0:
            widest = min(widest, model._resolved("max_leaves"))
    else:
        built = max(1, widest // 2)
    by_memory = POOL_HISTOGRAM_BYTES // (2 * widest * node_bytes)
    by_call = CALL_HISTOGRAM_BYTES // (built * node_bytes)
    return int(max(1, min(n_groups, by_memory, by_call)))


class _DaskBoostingMixin(_DaskPredictMixin):
    """``fit`` of a Dask collection: data-parallel histograms (xgboost.dask, LightGBM data-parallel)."""

    def fit(self, X, y, sample_weight=None, eval_set=None, verbose=True, cuts=None, **options):
        """The in-memory ``fit``, or, for a Dask collection X, the data-parallel one."""
        if not is_dask_collection(X):
            return super().fit(X, y, sample_weight=sample_weight, eval_set=eval_set,
                               verbose=verbose, cuts=cuts, **options)
        given = sorted(name for name, value in options.items() if value is not None)
        if given:
            raise ValueError(f"{', '.join(given)} not supported on Dask input; fit in memory "
                             "(X.compute()).")
        _no_eval_set(eval_set)
        X, y, sample_weight = self._dask_inputs(X, y, sample_weight)
        return self._fit_dask_target(X, y, sample_weight, cuts)

    # Objectives whose fit needs every row of a leaf (adapted leaf values) or of the data (a
    # base score that is no mean): not data-parallel here.
    _NOT_ON_DASK = ("reg:absoluteerror", "reg:quantileerror", "reg:pseudohubererror")

    def _fit_dask(self, X, y32, sample_weight, cuts, objective=None, n_classes=None):
        began = time.perf_counter()
        self._check_params()
        if self.use_quantized_grad:  # in-memory only (fastscratch.boosting.quantized)
            raise ValueError("use_quantized_grad=True is not supported on Dask input; leave it "
                             "False or fit in memory (X.compute()).")
        if callable(self.objective):
            raise ValueError("a callable objective is not supported on Dask input; use a named "
                             "objective or fit in memory (X.compute()).")
        objective = objective or self.objective or self._objectives[0]
        self._check_objective(objective)
        if objective in self._NOT_ON_DASK:
            raise ValueError(f"objective={objective!r} is not supported on Dask input (its leaf "
                             "values or base score need all the rows at once); fit in memory "
                             "(X.compute()).")
        # The client's kernels (split search, subtraction) run while the shards wait, on a machine
        # that may be the workers' own: one thread unless n_jobs says otherwise (several threads
        # on busy cores took 40 ms per level against 1 ms on one).
        n_jobs = self._resolved("n_jobs")
        n_threads = 1 if n_jobs is None else effective_n_threads(n_jobs)
        loss = self._make_loss(objective, n_classes)
        K = loss.n_groups
        sizes = X.chunks[0]
        n_samples, n_features = int(X.shape[0]), int(X.shape[1])
        x_blocks = _blocks(X)
        weights = None
        if sample_weight is not None:
            weights = sample_weight.astype(np.float32)
            if bool((weights < 0).any().compute()):
                raise ValueError("sample_weight must be non-negative.")

        # Categorical features: feature_types "c" (codes, NaN missing) and a Dask frame's
        # category columns (self._categories, coded in _dask_inputs).
        categorical = self._categorical_mask(n_features)
        binner = BinMapper(self._resolved("max_bin"), random_state=self._resolved("random_state"),
                           backend=self.backend, n_threads=n_threads,
                           categorical=categorical if categorical.any() else None)
        category_cuts = None
        if cuts is None and categorical.any():
            # A categorical feature's bins are all its codes, found on every row (as in memory).
            features = np.flatnonzero(categorical).tolist()
            category_cuts = _combined_category_cuts(dask.compute(*[
                _delayed(_category_summary, pure=True)(block, features) for block in x_blocks]),
                features)
        if cuts is None:
            # The rows the in-memory BinMapper would sample (same random_state, same rows).
            candidates = np.arange(n_samples)
            if weights is not None:
                w_all = np.asarray(weights.compute())
                if np.any(w_all == 0) and np.any(w_all > 0):
                    candidates = np.flatnonzero(w_all > 0)
            if binner.subsample is not None and candidates.shape[0] > binner.subsample:
                rng = check_random_state(self._resolved("random_state"))
                candidates = candidates[np.sort(rng.choice(candidates.shape[0], binner.subsample,
                                                           replace=False))]
            binner.fit(_gather_rows(x_blocks, sizes, candidates), category_cuts=category_cuts)
        else:
            cut_ptr, cut_values = cuts
            if len(cut_ptr) != n_features + 1:
                raise ValueError(f"cuts has {len(cut_ptr) - 1} features, X has {n_features}.")
            binner.set_xgboost_cuts(cut_ptr, cut_values)
        scale_pos_weight = float(np.float32(self._resolved("scale_pos_weight")))
        folded = objective == "binary:logistic" and scale_pos_weight != 1.0
        if folded:
            # As in memory: xgboost multiplies the positive rows' weights (after the cuts).
            base = (weights if weights is not None
                    else da.ones(y32.shape, chunks=y32.chunks, dtype=np.float32))
            weights = da.where(y32 == 1, base * np.float32(scale_pos_weight),
                               base).astype(np.float32)
        w_blocks = _blocks(weights) if weights is not None else None

        if self.base_score is not None:
            base_score = float(self.base_score)
        elif objective in ("multi:softprob", "multi:softmax"):
            # Class weight totals, then the loss's own formula (a bincount of one row per class).
            parts = [_delayed(_class_weight_totals, pure=True)(yb, wb, K)
                     for yb, wb in zip(_blocks(y32.astype(np.intp)), w_blocks or [None] * len(sizes))]
            (totals,) = _tree_reduce(parts, _sum_combine).compute()
            base_score = loss.base_score(np.arange(K, dtype=np.float32), totals)
        else:  # the objectives whose base score is the (weighted) mean of y
            if weights is None:
                total, count = y32.astype(np.float64).sum().compute(), n_samples
            else:
                total, count = dask.compute((y32.astype(np.float64) * weights).sum(),
                                            weights.astype(np.float64).sum())
            if folded:  # xgboost 3's one Newton step from margin 0, from the weighted mean of y
                base_score = loss.newton_base_score(np.array([total / count]), None)
            else:
                base_score = loss.base_score(np.array([total / count], dtype=np.float32), None)
        base_margin = np.broadcast_to(loss.score_to_margin(base_score), (K,)).astype(np.float32)
        kernels = {name: resolve_kernel(name, self.backend)[0]
                   for name in ("find_best_splits", "find_best_splits_monotone",
                                "subtract_histograms")}
        constraints = parse_constraints(self, n_features, getattr(self, "feature_names_in_", None))
        categorical = (None if not categorical.any() else CategoricalSplits(
            categorical, self._resolved("max_cat_to_onehot"), self._resolved("max_cat_threshold"),
            self.backend))
        params = self._train_params(loss)

        bins = [_delayed(_bin_block, pure=True)(block, binner) for block in x_blocks]
        before_shards = time.perf_counter()
        shards, has_missing = _make_shards(
            bins, _blocks(y32), w_blocks, sizes,
            (get_config(), self.backend, loss, binner.n_bins_, base_margin), n_jobs)
        setup_seconds = time.perf_counter() - began
        try:
            source = ShardedRows(shards, shards.row_ranges, int(binner.n_bins_.max()) + 1)
            forest, n_trees = self._grow_forest(source, binner,
                                                params, kernels, n_threads, has_missing, K,
                                                n_features, n_samples, constraints, categorical)
            trips = shards.round_trips
            profiles = shards.call("profile")
        finally:
            shards.close()
        total = time.perf_counter() - began
        # Where the time went (the last fit's; /work/notes/s4/dask_idle.py prints it).
        self._dask_profile = {
            "shards": len(shards), "trees": n_trees,
            "round_trips_per_tree": trips / max(n_trees, 1),
            "setup_s (cuts, bins, shards)": setup_seconds,
            "  of which checks, cuts, base score_s": before_shards - began,
            "  of which bins and shards_s": setup_seconds - (before_shards - began),
            "trees_s": total - setup_seconds,
            "waiting_for_shards_s": shards.wait_seconds,
            "client_s (split search, bookkeeping)": total - setup_seconds - shards.wait_seconds,
            "shard_seconds": profiles,
        }
        del shards
        # The in-memory estimator's own _set_fitted; the rows stay on the workers, so the
        # training record holds their shape only.
        training = Training(loss=loss, y=None, weights=None, binner=binner,
                            binned=_ShapeOnly((n_samples, n_features)), binned_columns=None,
                            has_missing=has_missing, base_score=base_score, base_margin=base_margin,
                            kernels=kernels, params=params, n_threads=n_threads, evals=[], metrics=[],
                            constraints=constraints, categorical=categorical)
        return self._set_fitted(training, BoostResult(forest=forest, history={}))

    def _grow_forest(self, source, binner, params, kernels, n_threads, has_missing, n_groups,
                     n_features, n_samples, constraints=None, categorical=None):
        """The rounds: every tree grown by the in-memory grower on ``source``; ``(forest, n_trees)``.

        A round's class trees grow together (:meth:`ShardedRows.grow_together`),
        at most :func:`_trees_at_once` at a time, in class order. The row and
        column samples are drawn here, tree after tree in class order, from the
        in-memory fit's :class:`~fastscratch.boosting.training.Sampler`: the same
        draws as in memory, so the same trees. With ``colsample_bylevel`` or
        ``colsample_bynode`` (drawn while a tree grows) the trees grow one
        after another.
        """
        sampler = Sampler(self, n_samples, n_features)
        n_slots = int(binner.n_bins_.max()) + 1
        roots = (np.empty((n_groups, n_features, n_slots, 2))
                 if n_groups > 1 and sampler.subsample >= 1.0 else None)
        at_once = (1 if any(fraction < 1.0 for fraction in sampler.fractions[1:])
                   else _trees_at_once(self, n_groups, n_features, n_slots, n_samples))
        buffers = [HistogramBuffers() for _ in range(at_once)]
        shape = _ShapeOnly((ShardedRows.VIRTUAL_ROWS, n_features))
        forest = Forest(n_groups=n_groups)
        progress = None
        if self._resolved("verbosity") > 0:
            from tqdm.auto import tqdm
            progress = tqdm(total=self._resolved("n_estimators"), desc=type(self).__name__)
        n_trees = 0
        for _ in range(self._resolved("n_estimators")):
            source.begin_round()
            for first in range(0, n_groups, at_once):
                groups = range(first, min(first + at_once, n_groups))
                growers, sampled = [], []
                for k, histogram_buffers in zip(groups, buffers):
                    mask = sampler.row_mask()  # drawn as in memory: rows, then features
                    sampled.append(mask is not None)
                    source.begin_tree(k, mask)
                    growers.append(TreeGrower(
                        shape, binner.n_bins_, None, None, None, None, params,
                        self._resolved("max_depth"), float(np.float32(self._resolved("gamma"))),
                        self._resolved("learning_rate"), kernels, n_threads,
                        has_missing=has_missing, feature_sampler=sampler.feature_sampler(),
                        grow_policy=self._resolved("grow_policy"),
                        max_leaves=self._resolved("max_leaves"),
                        histogram_buffers=histogram_buffers,
                        root_histogram=None if roots is None else roots[k],
                        source=source.tree(k), constraints=constraints,
                        categorical=categorical))
                if roots is not None and first == 0:
                    source.build_roots(roots)  # every class's root, in one pass
                for k, tree, was_sampled in zip(groups, source.grow_together(growers), sampled):
                    source.add_leaves(k, tree, sampled=was_sampled)
                    split = tree["left"] >= 0
                    thresholds = np.zeros(split.shape[0], dtype=np.float32)
                    thresholds[split] = binner.thresholds(tree["feature"][split], tree["bin"][split])
                    forest.add_tree(tree, thresholds, group=k)
                    n_trees += 1
            if progress is not None:
                progress.update()
        if progress is not None:
            progress.close()
        source.flush()
        return forest, n_trees

    def _dask_inputs(self, X, y, sample_weight):
        X, self._categories = _encode_category_columns(X, self.enable_categorical)
        X, columns = _checked_X(X, self, allow_nan=True, as_dtype=np.float32)  # NaN is a missing value, infinity an error
        X = X.astype(np.float32)
        y, sample_weight = _aligned(X, y, sample_weight)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D, got shape {y.shape}; pass y.ravel().")
        _set_feature_names(self, columns, X.shape[1])
        return X, y, sample_weight


_BOOST_DOC = """{name} on Dask: :class:`fastscratch.{name}` whose ``fit`` also takes Dask
    arrays and dataframes, data-parallel as xgboost.dask and LightGBM's
    data-parallel mode.

    The rows stay in their blocks on the workers, binned once with cut points
    from ``cuts`` (xgboost's format) or from the rows the in-memory
    :class:`~fastscratch.boosting.binning.BinMapper` would sample (the same
    rows for the same ``random_state``). For every tree, each worker computes
    its rows' gradients, and for every level it builds the histograms of its
    rows of the nodes to build (our ``build_histograms`` kernel); the client
    sums them (tree reduction), chooses the splits once with the in-memory
    grower (``find_best_splits``, the subtraction trick, xgboost's node
    numbering) and broadcasts them; each worker partitions its rows
    (``partition_rows``) and, at the end of the tree, adds the leaf values to
    its margins. With the same cut points the trees equal the in-memory ones
    (up to the rounding of the summed float64 histograms). Row and column
    subsampling (drawn on the client as in memory), ``scale_pos_weight`` and
    categorical features (``enable_categorical`` with a Dask frame's
    ``category`` columns of known categories, or ``feature_types`` "c" with
    the codes as values, NaN missing) give the in-memory trees too.
    ``predict*`` of a Dask collection returns Dask arrays (one task per block).
    Parameters and attributes: those of :class:`fastscratch.{name}`.
"""


def _codes_of_partition(frame, categories):
    return encode_frame(frame, True, categories)[0]


def _encode_category_columns(X, enable_categorical):
    """A Dask frame's ``category`` columns as float codes (NaN missing), as in memory.

    Returns ``(X, categories)``: ``categories`` is ``{column index: categories}``
    (the in-memory ``_categories``, from the frame's known categories), and
    each partition is coded with :func:`~fastscratch.boosting.categorical.encode_frame`
    against them (by value), as the in-memory fit and predict code a pandas
    frame. Anything else is returned as it is, with ``{}``.
    """
    import dask.dataframe as dd
    import pandas as pd

    if not isinstance(X, dd.DataFrame):
        return X, {}
    dtypes = X.dtypes
    chosen = [name for name, dtype in dtypes.items() if str(dtype) == "category"]
    if not chosen:
        return X, {}
    unknown = [str(name) for name in chosen if not X[name].cat.known]
    if unknown:
        raise ValueError(f"the category columns {unknown[:5]} of X have unknown categories; "
                         "call X = X.categorize() first (the trees need every category).")
    # The in-memory checks and categories, from an empty frame of the same columns and dtypes.
    empty = pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in dtypes.items()})
    _, categories = encode_frame(empty, enable_categorical)
    meta = pd.DataFrame({name: pd.Series(dtype=np.float64) for name in dtypes.index})
    return X.map_partitions(_codes_of_partition, categories, meta=meta), categories


def _no_eval_set(eval_set):
    if eval_set is not None:
        raise TypeError("eval_set is not supported with Dask input; evaluate the fitted model "
                        "with predict on the evaluation data.")


class XGBRegressor(_DaskBoostingMixin, _boosting.XGBRegressor):
    __doc__ = _BOOST_DOC.format(name="XGBRegressor")

    def _fit_dask_target(self, X, y, sample_weight, cuts):
        y = _numeric_target(y)
        if not bool(da.isfinite(y).all().compute()):
            raise ValueError("y contains NaN or infinity; remove or impute those targets.")
        return self._fit_dask(X, y.astype(np.float32), sample_weight, cuts)


class XGBClassifier(_DaskBoostingMixin, _boosting.XGBClassifier):
    __doc__ = _BOOST_DOC.format(name="XGBClassifier")

    def _fit_dask_target(self, X, y, sample_weight, cuts):
        classes, codes = _classes_and_codes(y)
        n_classes = classes.shape[0]
        if n_classes < 2:
            raise ValueError(f"y has one class ({classes[0]!r}); a classifier needs at least two.")
        objective = self._classifier_objective(n_classes)
        if objective == "binary:logistic" and n_classes > 2:
            raise ValueError(f"objective='binary:logistic' needs exactly two classes in y, got "
                             f"{n_classes}; use objective='multi:softprob' (or None).")
        self.classes_ = classes
        self.n_classes_ = n_classes
        return self._fit_dask(X, codes.astype(np.float32), sample_weight, cuts, objective,
                              n_classes)
