"""``fastscratch train unet``: train the U-Net on the shipped ISBI 2012 images.

Kept apart from :mod:`.train` so that building the command-line parser does
not import PyTorch (the ``fastscratch`` command imports every subcommand's
module to list its arguments).

Writes ``unet.pt`` (checkpoint, resumable with ``--resume``), ``history.json``
(per-epoch scores), ``learning_curves.png`` and ``prediction.png`` (image /
truth / prediction of the first validation slice) to ``--output``.
"""

import json
import os


def add_arguments(parser):
    """Arguments of ``fastscratch train``."""
    parser.add_argument("model", choices=["unet"], help="model to train (unet: U-Net on ISBI 2012)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps-per-epoch", type=int, default=None,
                        help="batches per epoch (default: cover every training image once)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--base-channels", type=int, default=64)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--padding", choices=["valid", "same"], default="valid")
    parser.add_argument("--batch-norm", action="store_true")
    parser.add_argument("--input-size", type=int, default=None, help="training tile (default 572 valid, 256 same)")
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    parser.add_argument("--lr", type=float, default=None, help="default 0.01 (sgd) or 1e-3 (adam)")
    parser.add_argument("--momentum", type=float, default=0.99)
    parser.add_argument("--loss", choices=["weighted_ce", "dice", "weighted_ce+dice"], default="weighted_ce")
    parser.add_argument("--no-augment", dest="augment", action="store_false")
    parser.add_argument("--n-validation", type=int, default=3, help="last ISBI slices held out (default 3)")
    parser.add_argument("--n-images", type=int, default=30, help="use the first N of the 30 ISBI images")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-amp", dest="amp", action="store_false", help="no mixed precision on CUDA")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="unet_isbi2012", help="directory for checkpoint, figures, history")
    parser.add_argument("--resume", default=None, help="checkpoint to continue from")
    parser.add_argument("--no-progress", dest="progress", action="store_false")


def run(args):
    """``fastscratch train unet``: train on ISBI 2012, save checkpoint, history, figures."""
    from ..datasets import load_isbi2012
    from .train import plot_learning_curves, plot_prediction, predict_tiled, resolve_device, train_unet

    images, labels = load_isbi2012()
    if not 1 <= args.n_images <= len(images):
        raise SystemExit(f"--n-images must be in [1, {len(images)}], got {args.n_images}.")
    images, labels = images[:args.n_images], labels[:args.n_images]
    os.makedirs(args.output, exist_ok=True)
    checkpoint = os.path.join(args.output, "unet.pt")
    try:
        device = resolve_device(args.device)
    except ValueError as error:
        raise SystemExit(f"fastscratch train unet: {error}") from error
    print(f"training U-Net on {len(images) - args.n_validation} ISBI 2012 images, validating on "
          f"{args.n_validation}, device {device}" + (" (mixed precision)" if args.amp and device.type == "cuda" else ""),
          flush=True)
    try:
        trainer = train_unet(
            images, labels, n_validation=args.n_validation, base_channels=args.base_channels, depth=args.depth,
            padding=args.padding, batch_norm=args.batch_norm, input_size=args.input_size, epochs=args.epochs,
            steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
            momentum=args.momentum, loss=args.loss, augment=args.augment, device=device, amp=args.amp,
            num_workers=args.workers, seed=args.seed, progress=args.progress, checkpoint_path=checkpoint,
            resume=args.resume)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"fastscratch train unet: {error}") from error
    with open(os.path.join(args.output, "history.json"), "w") as handle:
        json.dump(trainer.history, handle, indent=1)
    if trainer.history["epoch"]:
        plot_learning_curves(os.path.join(args.output, "learning_curves.png"), trainer.history)
    if trainer.validation is not None:
        val_images, val_labels, _ = trainer.validation
        prediction = predict_tiled(trainer.model, val_images[0], tile=trainer.input_size,
                                   amp=trainer.use_amp).argmax(axis=0)
        plot_prediction(os.path.join(args.output, "prediction.png"), val_images[0], val_labels[0], prediction,
                        title=f"U-Net after {trainer.epoch} epochs (validation slice)")
    print(f"saved {checkpoint}, history.json, learning_curves.png"
          + (", prediction.png" if trainer.validation is not None else "") + f" in {args.output}")
    return 0
