"""U-Net (fastscratch.segmentation): architecture, overlap-tile prediction, weight map, losses,
transforms, metrics, training loop, checkpoints and the ``fastscratch train unet`` command."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from scipy import ndimage  # noqa: E402
from sklearn.metrics import f1_score, jaccard_score  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from fastscratch import UNet  # noqa: E402
from fastscratch.datasets import load_isbi2012  # noqa: E402
from fastscratch.segmentation import losses, metrics, transforms  # noqa: E402
from fastscratch.segmentation.train import PatchDataset, Trainer, resolve_device, train_unet  # noqa: E402
from fastscratch.segmentation.unet import predict_tiled  # noqa: E402


@pytest.fixture(autouse=True)
def one_torch_thread():
    # Small convolutions on a shared 2-core machine: one thread is faster and deterministic.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def isbi():
    return load_isbi2012()


# -- architecture --------------------------------------------------------------------------
def test_paper_network_parameters_and_shape():
    model = UNet()
    # The shapes do not depend on the width: a real forward pass at base_channels=1 (milliseconds).
    with torch.no_grad():
        output = UNet(base_channels=1)(torch.zeros(1, 1, 572, 572))
    assert sum(p.numel() for p in model.parameters()) == 31_030_658
    assert tuple(output.shape) == (1, 2, 388, 388)
    assert model.output_size(572) == 388
    assert model.margin() == 92
    assert model.min_input_size == 188
    assert model.valid_input_sizes(540, 600) == [540, 556, 572, 588]
    assert model.input_size_for(388) == 572
    # Channels of the paper's Fig. 1.
    assert [block[0].out_channels for block in model.encoder] == [64, 128, 256, 512]
    assert model.bottleneck[2].out_channels == 1024
    assert [up.out_channels for up in model.upconvs] == [512, 256, 128, 64]
    assert UNet(**model.get_config()).get_config() == model.get_config()


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_valid_sizes_follow_the_size_arithmetic(depth):
    model = UNet(base_channels=2, depth=depth)
    sizes = model.valid_input_sizes(1, 220)
    # s = 2^d (b + 8) - 4 with output 2^d (b - 4) + 4, b the bottleneck's output size.
    step = 2 ** depth
    for size in sizes:
        b = (size + 4) // step - 8
        assert (size + 4) % step == 0
        assert model.output_size(size) == step * (b - 4) + 4
    assert all(b - a == step for a, b in zip(sizes, sizes[1:]))
    for size in range(1, sizes[0]):
        assert not model.is_valid_input_size(size)
    # A real forward pass agrees with the arithmetic (smallest two sizes, non-square).
    x = torch.randn(1, 1, sizes[0], sizes[1])
    with torch.no_grad():
        y = model(x)
    assert tuple(y.shape) == (1, 2, model.output_size(sizes[0]), model.output_size(sizes[1]))


@pytest.mark.parametrize("batch_norm", [False, True])
def test_same_padding_keeps_the_size(batch_norm):
    model = UNet(in_channels=3, n_classes=4, base_channels=4, depth=3, padding="same", batch_norm=batch_norm)
    with torch.no_grad():
        y = model(torch.randn(2, 3, 64, 40))
    assert tuple(y.shape) == (2, 4, 64, 40)
    assert model.margin() == 0
    with pytest.raises(ValueError, match="multiple of 8"):
        model(torch.randn(1, 3, 60, 64))
    if batch_norm:
        assert not any(isinstance(m, torch.nn.Conv2d) and m.bias is not None and m.kernel_size == (3, 3)
                       for m in model.modules())


def test_he_normal_initialisation():
    torch.manual_seed(0)
    model = UNet(base_channels=16)
    conv = model.encoder[3][2]  # 128 -> 128 channels, 3x3
    std = conv.weight.std().item()
    assert std == pytest.approx(math.sqrt(2.0 / (9 * 128)), rel=0.03)
    assert model.upconvs[0].weight.std().item() == pytest.approx(math.sqrt(2.0 / 256), rel=0.03)
    assert all(float(m.bias.detach().abs().max()) == 0.0 for m in model.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)))


def test_bad_inputs_get_clear_errors():
    model = UNet(base_channels=2)
    with pytest.raises(ValueError, match="4-D tensor"):
        model(torch.zeros(1, 188, 188))
    with pytest.raises(ValueError, match="3 channels"):
        model(torch.zeros(1, 3, 188, 188))
    with pytest.raises(ValueError, match="smaller than the network's minimum 188"):
        model(torch.zeros(1, 1, 100, 100))
    with pytest.raises(ValueError, match=r"556 and 572 are the nearest"):
        model(torch.zeros(1, 1, 560, 572))
    with pytest.raises(ValueError, match="padding"):
        UNet(padding="full")
    with pytest.raises(ValueError, match="depth"):
        UNet(depth=0)


# -- overlap-tile prediction -----------------------------------------------------------------
@pytest.mark.parametrize("shape", [(56, 56), (50, 71)])
def test_tiled_prediction_equals_single_pass(shape, rng):
    torch.manual_seed(0)
    model = UNet(base_channels=4, depth=2)
    image = rng.standard_normal(shape).astype(np.float32)
    margin = model.margin()
    assert margin == 20
    # One pass over the whole mirror-padded image (padded up to a valid size).
    out_h = model.output_size(model.input_size_for(shape[0]))
    out_w = model.output_size(model.input_size_for(shape[1]))
    padded = np.pad(image, ((margin, margin + out_h - shape[0]), (margin, margin + out_w - shape[1])),
                    mode="reflect")
    with torch.no_grad():
        single = model(torch.from_numpy(padded)[None, None])[0, :, :shape[0], :shape[1]].numpy()
    tiled = predict_tiled(model, image, tile=68, batch_size=3, return_logits=True)  # 28 x 28 output tiles
    assert tiled.shape == (2, *shape)
    np.testing.assert_allclose(tiled, single, rtol=1e-4, atol=1e-5)
    probabilities = predict_tiled(model, image)
    np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(probabilities, torch.softmax(torch.from_numpy(single), 0).numpy(), atol=1e-5)


def test_tiled_prediction_same_padding_and_errors(rng):
    model = UNet(base_channels=4, depth=2, padding="same")
    image = rng.standard_normal((1, 40, 30)).astype(np.float32)
    probabilities = predict_tiled(model, image, tile=32, margin=4)
    assert probabilities.shape == (2, 40, 30)
    # A margin so large that each tile covers the image: same as one pass over the mirrored image.
    with torch.no_grad():
        padded = np.pad(image[0], ((8, 8 + 8), (8, 8 + 18)), mode="reflect")
        single = model(torch.from_numpy(padded)[None, None])[0, :, 8:48, 8:38]
    np.testing.assert_allclose(predict_tiled(model, image, tile=64, margin=8, return_logits=True), single.numpy(),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="channels"):
        predict_tiled(model, np.zeros((3, 40, 40), np.float32))
    with pytest.raises(ValueError, match="margin"):
        predict_tiled(UNet(base_channels=2, depth=2), image, margin=3)


# -- weight map and losses -----------------------------------------------------------------
def test_weight_map_matches_hand_computed_values():
    # Two 3-pixel-wide cells separated by a 3-pixel membrane, and a background pixel off to the side.
    label = np.zeros((5, 12), dtype=np.uint8)
    label[:, 0:3] = 1
    label[:, 6:9] = 1
    n_cell, n_membrane = 30, 30
    w_cell = 60 / (2 * n_cell)
    w_membrane = 60 / (2 * n_membrane)
    weights = losses.weight_map(label, w0=10.0, sigma=5.0)
    # Membrane columns 3, 4, 5: d1 + d2 = 1 + 3 = 2 + 2 = 3 + 1 = 4.
    for col in (3, 4, 5):
        np.testing.assert_allclose(weights[:, col], w_membrane + 10 * np.exp(-16 / 50), rtol=1e-6)
    # Column 11: 3 pixels from cell B (col 8), 9 from cell A (col 2): d1 + d2 = 12.
    np.testing.assert_allclose(weights[:, 11], w_membrane + 10 * np.exp(-144 / 50), rtol=1e-6)
    # Cell pixels carry only their class weight.
    np.testing.assert_allclose(weights[label == 1], w_cell, rtol=1e-6)
    # Diagonal distance: a membrane pixel below-right of a single corner.
    label2 = np.zeros((8, 8), dtype=np.uint8)
    label2[0, 0] = 1
    label2[7, 7] = 1
    w = losses.weight_map(label2, class_weights=[1.0, 0.0])
    d1, d2 = math.hypot(3, 4), math.hypot(4, 3)  # pixel (3, 4)
    assert w[3, 4] == pytest.approx(1.0 + 10 * math.exp(-(d1 + d2) ** 2 / 50), rel=1e-6)


def test_weight_map_equals_brute_force_on_isbi(isbi):
    label = isbi[1][0][:160, :200]
    cells, n_cells = ndimage.label(label == 1)
    distances = np.sort(np.stack([ndimage.distance_transform_edt(cells != k) for k in range(1, n_cells + 1)]),
                        axis=0)
    w_c = losses.class_balance_weights(label)
    expected = w_c[label] + np.where(label == 0, 10 * np.exp(-(distances[0] + distances[1]) ** 2 / 50), 0)
    np.testing.assert_allclose(losses.weight_map(label), expected, rtol=1e-5, atol=1e-6)
    # One cell only: no border term.
    np.testing.assert_allclose(losses.weight_map(np.ones((4, 4), np.uint8)), 1.0)


def test_weight_map_rejects_bad_labels():
    with pytest.raises(ValueError, match="class indices"):
        losses.weight_map(np.full((4, 4), 255, np.uint8))
    with pytest.raises(ValueError, match="integer class indices"):
        losses.weight_map(np.full((4, 4), 0.5))
    with pytest.raises(ValueError, match="2-D"):
        losses.weight_map(np.zeros((2, 4, 4), np.uint8))


def test_losses(rng):
    logits = torch.from_numpy(rng.standard_normal((2, 3, 5, 6)).astype(np.float32))
    target = torch.from_numpy(rng.integers(0, 3, (2, 5, 6)))
    weight = torch.from_numpy(rng.random((2, 5, 6)).astype(np.float32))
    np.testing.assert_allclose(losses.weighted_cross_entropy(logits, target).item(),
                               F.cross_entropy(logits, target).item(), rtol=1e-6)
    log_p = torch.log_softmax(logits, 1).gather(1, target[:, None])[:, 0]
    expected = -(weight * log_p).mean()
    np.testing.assert_allclose(losses.WeightedCrossEntropyLoss()(logits, target, weight).item(), expected.item(),
                               rtol=1e-6)
    perfect = 50.0 * F.one_hot(target, 3).permute(0, 3, 1, 2).float()
    assert losses.SoftDiceLoss()(perfect, target).item() == pytest.approx(0.0, abs=1e-6)
    combined = losses.CombinedLoss(dice_weight=0.5)(logits, target, weight)
    assert combined.item() == pytest.approx(expected.item() + 0.5 * losses.soft_dice_loss(logits, target).item(),
                                            rel=1e-6)
    with pytest.raises(ValueError, match="class indices in \\[0, 2\\]"):
        losses.weighted_cross_entropy(logits, target + 1)
    with pytest.raises(ValueError, match="integer tensor"):
        losses.soft_dice_loss(logits, target.float())
    with pytest.raises(ValueError, match="crop the target"):
        losses.weighted_cross_entropy(logits, target[:, :4])


# -- transforms ------------------------------------------------------------------------------
def test_elastic_deformation_identity_at_zero_displacement(isbi):
    image = transforms.normalize_zscore(isbi[0][0][:64, :80])
    mask = isbi[1][0][:64, :80]
    weight = losses.weight_map(mask)
    zero = np.zeros((2, 64, 80))
    for order in (1, 3):
        out_image, out_mask, out_weight = transforms.elastic_deformation(image, mask, weight, displacement=zero,
                                                                         order=order)
        np.testing.assert_allclose(out_image, image, atol=1e-5)
        np.testing.assert_array_equal(out_mask, mask)
        np.testing.assert_allclose(out_weight, weight, atol=1e-5)
    field = transforms.elastic_displacement((64, 80), coarse=np.zeros((2, 3, 3)))
    np.testing.assert_array_equal(field, 0.0)


def test_elastic_deformation_keeps_masks_binary_and_follows_the_grid(isbi):
    image, mask = isbi[0][1].astype(np.float32), isbi[1][1]
    out_image, out_mask, _ = transforms.elastic_deformation(image, mask, rng=0)
    assert out_mask.dtype == mask.dtype and out_mask.shape == mask.shape
    assert set(np.unique(out_mask)) == {0, 1}
    assert not np.array_equal(out_mask, mask)
    # Same seed, same deformation.
    again = transforms.elastic_deformation(image, mask, rng=0)
    np.testing.assert_array_equal(again[0], out_image)
    np.testing.assert_array_equal(again[1], out_mask)
    # The per-pixel field passes through the coarse 3x3 vectors at the corners and the centre.
    coarse = np.random.default_rng(1).normal(0, 10, (2, 3, 3))
    field = transforms.elastic_displacement((101, 81), coarse=coarse)
    np.testing.assert_allclose(field[:, [0, 50, 100]][:, :, [0, 40, 80]], coarse, atol=1e-9)
    # ... and is the 2-D cubic spline through them (scipy's map_coordinates as the reference).
    rows, cols = np.meshgrid(np.linspace(0, 2, 101), np.linspace(0, 2, 81), indexing="ij")
    reference = [ndimage.map_coordinates(c, np.stack([rows, cols]), order=3, mode="nearest") for c in coarse]
    np.testing.assert_allclose(field, np.stack(reference), atol=1e-9)
    # A constant shift moves the image by whole pixels (image and mask alike).
    shift = np.zeros((2,) + mask.shape)
    shift[1] = 3.0
    moved_image, moved_mask, _ = transforms.elastic_deformation(image, mask, displacement=shift, order=1)
    np.testing.assert_array_equal(moved_mask[:, :-3], mask[:, 3:])
    np.testing.assert_allclose(moved_image[:, :-3], image[:, 3:], atol=1e-4)
    # Displacements drawn with sigma 10 pixels.
    samples = np.stack([transforms.elastic_displacement((9, 9), rng=seed)[:, ::4, ::4] for seed in range(300)])
    assert samples.std() == pytest.approx(10.0, rel=0.08)


def test_flip_rotate_and_affine_move_image_and_mask_together(rng):
    mask = (rng.random((30, 20)) > 0.5).astype(np.int64)
    image = mask.astype(np.float32) * 2.0 - 1.0
    weight = mask.astype(np.float32) + 1.0
    for seed in range(8):
        out_image, out_mask, out_weight = transforms.RandomFlipRotate()(image, mask, weight, rng=seed)
        np.testing.assert_array_equal(out_image, out_mask * 2.0 - 1.0)
        np.testing.assert_array_equal(out_weight, out_mask + 1.0)
    square = (rng.random((21, 21)) > 0.5).astype(np.int64)
    out_image, out_mask, _ = transforms.affine_transform(square.astype(np.float32), square,
                                                         matrix=transforms.affine_matrix(rotation=90))
    np.testing.assert_array_equal(out_mask, np.rot90(square, 1))
    np.testing.assert_allclose(out_image, np.rot90(square, 1), atol=1e-6)
    identity = transforms.affine_transform(image, mask, weight)
    np.testing.assert_allclose(identity[0], image, atol=1e-6)
    np.testing.assert_array_equal(identity[1], mask)
    out_image, out_mask, _ = transforms.RandomAffine()(image, mask, rng=3)
    assert set(np.unique(out_mask)) <= {0, 1}
    composed = transforms.Compose([transforms.RandomFlipRotate(), transforms.ElasticDeformation(order=1)])
    assert composed(image, mask, rng=0)[1].shape == mask.shape
    with pytest.raises(ValueError, match="mask has shape"):
        transforms.elastic_deformation(image, mask[:10])


def test_normalization(rng):
    image = rng.integers(0, 256, (2, 16, 16)).astype(np.uint8)
    z = transforms.normalize_zscore(image)
    np.testing.assert_allclose(z.mean(axis=(1, 2)), 0.0, atol=1e-6)
    np.testing.assert_allclose(z.std(axis=(1, 2)), 1.0, rtol=1e-5)
    m = transforms.normalize_minmax(image)
    np.testing.assert_allclose(m.min(axis=(1, 2)), 0.0)
    np.testing.assert_allclose(m.max(axis=(1, 2)), 1.0)
    np.testing.assert_array_equal(transforms.normalize_zscore(np.full((4, 4), 7.0)), 0.0)
    assert z.dtype == np.float32


# -- metrics -------------------------------------------------------------------------------
def test_scores_match_scikit_learn(rng):
    truth = rng.integers(0, 3, 500)
    prediction = np.where(rng.random(500) < 0.7, truth, rng.integers(0, 3, 500))
    scores = metrics.scores_from_confusion(metrics.confusion_matrix(prediction, truth, 3))
    assert scores["pixel_accuracy"] == pytest.approx(np.mean(prediction == truth))
    assert scores["dice"] == pytest.approx(f1_score(truth, prediction, average="macro"))
    assert scores["iou"] == pytest.approx(jaccard_score(truth, prediction, average="macro"))


def test_rand_error():
    truth = np.zeros((6, 9), np.uint8)
    truth[:, :4] = 1
    truth[:, 5:] = 1
    assert metrics.rand_error(truth, truth) == 0.0
    # Merging the two cells: recall 1, precision = 2 * (24*23) / (48*47).
    merged = np.ones_like(truth)
    precision = 2 * 24 * 23 / (48 * 47)
    assert metrics.rand_error(merged, truth) == pytest.approx(1 - 2 * precision / (precision + 1))
    # Splitting a cell in two increases the error; predicting no cell at all is one big segment.
    split = truth.copy()
    split[3, :4] = 0
    assert 0 < metrics.rand_error(split, truth) < 1


# -- training ------------------------------------------------------------------------------
def test_training_lowers_the_loss_on_isbi(isbi, tmp_path):
    images, labels = isbi[0][:2], isbi[1][:2]
    kwargs = dict(n_validation=0, base_channels=4, depth=2, input_size=92, batch_size=2, steps_per_epoch=4,
                  optimizer="adam", lr=5e-3, seed=0, progress=False, verbose=False)
    trainer = train_unet(images, labels, epochs=0, **kwargs)
    from fastscratch.segmentation.train import prepare_data

    x, y = prepare_data(images[:, :128, :128], labels[:, :128, :128])
    w = np.stack([losses.weight_map(mask) for mask in y])
    before = trainer.evaluate(x, y, w, tile=92)["loss"]
    trainer = train_unet(images, labels, epochs=3, checkpoint_path=str(tmp_path / "unet.pt"), **kwargs)
    after = trainer.evaluate(x, y, w, tile=92)
    assert after["loss"] < 0.8 * before
    assert trainer.history["epoch"] == [1, 2, 3]
    assert trainer.history["train_loss"][-1] < trainer.history["train_loss"][0]
    # Same seed, same result.
    again = train_unet(images, labels, epochs=3, **kwargs)
    assert again.history["train_loss"] == trainer.history["train_loss"]
    # The checkpoint restores the model and the optimizer; training resumes at epoch 4.
    loaded, _ = Trainer.load_checkpoint(str(tmp_path / "unet.pt"), device="cpu", progress=False)
    assert loaded.epoch == 3
    np.testing.assert_equal(loaded.history, trainer.history)
    np.testing.assert_allclose(predict_tiled(loaded.model, x[0]), predict_tiled(trainer.model, x[0]), atol=1e-6)
    resumed = train_unet(images, labels, epochs=1, resume=str(tmp_path / "unet.pt"), **kwargs)
    assert resumed.history["epoch"] == [1, 2, 3, 4]


def test_patch_dataset_aligns_image_and_mask(isbi):
    labels = isbi[1][:2, :100, :120].astype(np.int64)
    images = labels[:, None].astype(np.float32)
    dataset = PatchDataset(images, labels, None, input_size=92, output_size=52, length=6, seed=1)
    for index in range(len(dataset)):
        image, mask, weight = dataset[index]
        assert image.shape == (1, 92, 92) and mask.shape == (52, 52) and weight.shape == (52, 52)
        np.testing.assert_array_equal(image[0, 20:72, 20:72].numpy(), mask.numpy())
    augmented = PatchDataset(images, labels, None, 92, 52, 3, transform=transforms.RandomFlipRotate(), seed=1)
    image, mask, _ = augmented[0]
    np.testing.assert_array_equal(image[0, 20:72, 20:72].numpy(), mask.numpy())


def test_training_rejects_bad_input(isbi):
    images, labels = isbi[0][:2], isbi[1][:2]
    with pytest.raises(ValueError, match="class indices"):
        train_unet(images, labels * 255, epochs=0, n_validation=0, base_channels=2, depth=2)
    with pytest.raises(ValueError, match="labels must have shape"):
        train_unet(images, labels[:1], epochs=0, n_validation=0, base_channels=2, depth=2)
    with pytest.raises(ValueError, match="nearest"):
        train_unet(images, labels, epochs=0, n_validation=0, base_channels=2, depth=2, input_size=90)
    with pytest.raises(ValueError, match="n_validation"):
        train_unet(images, labels, epochs=0, n_validation=2, base_channels=2, depth=2)
    with pytest.raises(ValueError, match="optimizer"):
        Trainer(UNet(base_channels=2), optimizer="rmsprop")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_trainer_adamw_schedules_and_memory_format_are_plain_torch(rng, tmp_path):
    """AdamW + OneCycleLR in the Trainer = the same torch objects stepped by hand; the cosine
    schedule follows its formula; channels_last gives the float32 answer; checkpoints keep the schedule."""
    import copy

    torch.manual_seed(0)
    model = UNet(base_channels=2, depth=2, padding="same", batch_norm=True)
    reference = copy.deepcopy(model)
    trainer = Trainer(copy.deepcopy(model), optimizer="adamw", lr=0.01, weight_decay=1e-3, schedule="onecycle",
                      total_steps=10, warmup=0.2, device="cpu", progress=False)
    channels_last = Trainer(copy.deepcopy(model), optimizer="adamw", lr=0.01, weight_decay=1e-3,
                            schedule="onecycle", total_steps=10, warmup=0.2, channels_last=True, device="cpu",
                            progress=False)
    optimizer = torch.optim.AdamW(reference.parameters(), lr=0.01, weight_decay=1e-3)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.01, total_steps=10, pct_start=0.2)
    x = torch.from_numpy(rng.standard_normal((2, 1, 32, 32)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 2, (2, 32, 32)))
    w = torch.from_numpy(rng.random((2, 32, 32)).astype(np.float32))
    for _ in range(3):
        loss, _ = trainer.train_step(x, y, w)
        channels_last.train_step(x, y, w)
        optimizer.zero_grad()
        expected = (F.cross_entropy(reference(x), y, reduction="none") * w).mean()
        expected.backward()
        optimizer.step()
        scheduler.step()
        assert float(loss) == pytest.approx(expected.item(), rel=1e-5)
        assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(optimizer.param_groups[0]["lr"])
    for ours, cl, theirs in zip(trainer.model.parameters(), channels_last.model.parameters(),
                                reference.parameters()):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(cl, theirs, rtol=1e-4, atol=1e-5)
    # Checkpoints carry the schedule's position.
    trainer.save_checkpoint(str(tmp_path / "unet.pt"))
    loaded, _ = Trainer.load_checkpoint(str(tmp_path / "unet.pt"), device="cpu", progress=False)
    assert loaded.scheduler.last_epoch == 3 and loaded.config["schedule"] == "onecycle"
    assert loaded.optimizer.param_groups[0]["lr"] == pytest.approx(trainer.optimizer.param_groups[0]["lr"])
    # Cosine: linear warm-up over 2 of 10 steps, then (1 + cos(pi t)) / 2 down to 0.
    cosine = Trainer(UNet(base_channels=2, depth=2, padding="same"), optimizer="sgd", lr=0.1, schedule="cosine",
                     total_steps=10, warmup=0.2, device="cpu", progress=False)
    rates = []
    for _ in range(10):
        rates.append(cosine.optimizer.param_groups[0]["lr"])
        cosine.optimizer.step()
        cosine.scheduler.step()
    expected = [0.05, 0.1] + [0.1 * 0.5 * (1 + math.cos(math.pi * k / 8)) for k in range(8)]
    np.testing.assert_allclose(rates, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="total_steps"):
        Trainer(UNet(base_channels=2, depth=2), schedule="onecycle")
    with pytest.raises(ValueError, match="schedule"):
        Trainer(UNet(base_channels=2, depth=2), schedule="step", total_steps=3)


def test_cpu_bfloat16_autocast_stays_close_to_float32(rng):
    import copy

    torch.manual_seed(0)
    model = UNet(base_channels=4, depth=2, padding="same", batch_norm=True)
    full = Trainer(copy.deepcopy(model), optimizer="adamw", lr=1e-3, device="cpu", progress=False)
    half = Trainer(copy.deepcopy(model), optimizer="adamw", lr=1e-3, cpu_bfloat16=True, device="cpu",
                   progress=False)
    assert half.use_bfloat16 and not full.use_bfloat16
    x = torch.from_numpy(rng.standard_normal((2, 1, 32, 32)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 2, (2, 32, 32)))
    loss_full, _ = full.train_step(x, y)
    loss_half, _ = half.train_step(x, y)
    assert float(loss_half) == pytest.approx(float(loss_full), rel=2e-2)  # bfloat16: 8 bits of mantissa
    for ours, theirs in zip(half.model.parameters(), full.model.parameters()):
        assert ours.dtype == torch.float32


def test_train_step_is_a_plain_torch_step(rng):
    """Trainer.train_step = zero_grad, forward, weighted cross-entropy, backward, SGD step (CPU path)."""
    import copy

    torch.manual_seed(0)
    model = UNet(base_channels=2, depth=2)
    reference = copy.deepcopy(model)
    trainer = Trainer(model, optimizer="sgd", lr=0.05, momentum=0.99, device="cpu", progress=False)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.99)
    x = torch.from_numpy(rng.standard_normal((2, 1, 60, 60)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 2, (2, 20, 20)))
    w = torch.from_numpy(rng.random((2, 20, 20)).astype(np.float32))
    for _ in range(2):
        loss, correct = trainer.train_step(x, y, w)
        optimizer.zero_grad()
        logits = reference(x)
        expected = (F.cross_entropy(logits, y, reduction="none") * w).mean()
        expected.backward()
        optimizer.step()
        assert float(loss) == pytest.approx(expected.item(), rel=1e-6)
        assert int(correct) == int((logits.argmax(1) == y).sum())
    for ours, theirs in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(ours, theirs)
    assert not trainer.use_amp  # mixed precision is for CUDA only


def test_patches_do_not_depend_on_workers_and_change_with_the_epoch(isbi):
    from torch.utils.data import DataLoader

    images = np.stack([transforms.normalize_zscore(image) for image in isbi[0][:2, :120, :120]])[:, None]
    labels = isbi[1][:2, :120, :120].astype(np.int64)
    dataset = PatchDataset(images, labels, None, 92, 52, length=4, seed=3,
                           transform=transforms.Compose([transforms.RandomFlipRotate(),
                                                         transforms.ElasticDeformation()]))

    def batches(workers):
        return [b for batch in DataLoader(dataset, batch_size=2, num_workers=workers) for b in batch]

    serial = batches(0)
    for ours, theirs in zip(batches(2), serial):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    dataset.set_epoch(1)
    assert not torch.equal(batches(0)[0], serial[0])
