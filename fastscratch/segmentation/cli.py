"""``fastscratch train unet``: train the U-Net on the shipped ISBI 2012 slices with the recipe.

Kept apart from :mod:`.train` and :mod:`.recipe`'s training code so that
building the command-line parser does not import PyTorch (the ``fastscratch``
command imports every subcommand's module to list its arguments).

Every recipe part is an option whose default is :data:`.recipe.RECIPE`'s. The
slices play fixed roles (:func:`.recipe.split_slices`): the last
``--held-out`` (5) are held out, the ``--validation`` (1) before them validate,
the others train. Writes ``unet.pt`` (checkpoint after every epoch),
``history.json`` (recipe, slice roles, per-epoch scores and seconds),
``learning_curves.png``, ``prediction.png`` (image / truth / prediction of the
first held-out slice) and ``train.log`` to ``--output``.
"""

import os

from .recipe import RECIPE


def _on_off(parser, name, help_text):
    dest = name.replace("-", "_")
    group = parser.add_mutually_exclusive_group()
    group.add_argument(f"--{name}", dest=dest, action="store_true", default=None, help=help_text)
    group.add_argument(f"--no-{name}", dest=dest, action="store_false")


def add_arguments(parser):
    """Arguments of ``fastscratch train``."""
    parser.add_argument("model", choices=["unet"], help="model to train (unet: U-Net on ISBI 2012)")
    recipe = RECIPE
    parser.add_argument("--epochs", type=int, default=None, help=f"default {recipe['epochs']}")
    parser.add_argument("--steps-per-epoch", type=int, default=None,
                        help=f"batches per epoch (default {recipe['steps_per_epoch']})")
    parser.add_argument("--batch-size", type=int, default=None, help=f"default {recipe['batch_size']}")
    parser.add_argument("--tile", type=int, default=None, help=f"training tile side (default {recipe['tile']})")
    parser.add_argument("--base-channels", type=int, default=None, help=f"default {recipe['base_channels']}")
    parser.add_argument("--depth", type=int, default=None, help=f"default {recipe['depth']}")
    parser.add_argument("--padding", choices=["valid", "same"], default=None, help=f"default {recipe['padding']}")
    _on_off(parser, "batch-norm", f"batch normalisation (default {'on' if recipe['batch_norm'] else 'off'})")
    parser.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], default=None,
                        help=f"default {recipe['optimizer']}")
    parser.add_argument("--lr", type=float, default=None, help=f"peak learning rate (default {recipe['lr']})")
    parser.add_argument("--weight-decay", type=float, default=None, help=f"default {recipe['weight_decay']}")
    parser.add_argument("--schedule", choices=["onecycle", "cosine", "none"], default=None,
                        help=f"learning-rate schedule (default {recipe['schedule']})")
    parser.add_argument("--warmup", type=float, default=None,
                        help=f"fraction of the run warming up (default {recipe['warmup']})")
    _on_off(parser, "elastic", "the paper's elastic deformation besides flips and rotations "
                               f"(default {'on' if recipe['elastic'] else 'off'})")
    parser.add_argument("--elastic-sigma", type=float, default=None,
                        help=f"elastic displacement in pixels (default {recipe['elastic_sigma']})")
    parser.add_argument("--loss", choices=["weighted_ce", "dice", "weighted_ce+dice"], default=None,
                        help=f"default {recipe['loss']}")
    parser.add_argument("--dice-weight", type=float, default=None, help=f"default {recipe['dice_weight']}")
    parser.add_argument("--w0", type=float, default=None, help=f"weight map border weight (default {recipe['w0']})")
    parser.add_argument("--class-weights", choices=["balanced", "none"], default=None,
                        help=f"class term of the weight map (default {recipe['class_weights']})")
    _on_off(parser, "channels-last", "channels_last memory format "
                                     f"(default {'on' if recipe['channels_last'] else 'off'})")
    _on_off(parser, "cpu-bfloat16", "bfloat16 autocast on CPU "
                                    f"(default {'on' if recipe['cpu_bfloat16'] else 'off'})")
    parser.add_argument("--held-out", type=int, default=None,
                        help=f"last slices held out of training and selection (default {recipe['n_held_out']})")
    parser.add_argument("--validation", type=int, default=None,
                        help="slices before the held-out ones used for validation "
                             f"(default {recipe['n_validation']})")
    parser.add_argument("--seed", type=int, default=None, help=f"default {recipe['seed']}")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-amp", dest="amp", action="store_false", help="no mixed precision on CUDA")
    parser.add_argument("--output", default="unet_isbi2012", help="directory for checkpoint, figures, history")
    parser.add_argument("--progress", action="store_true", help="tqdm bar within each epoch")


def run(args):
    """``fastscratch train unet``: the recipe on ISBI 2012; checkpoint, history, figures."""
    from .recipe import train_recipe
    from .train import plot_prediction
    from .unet import predict_tiled

    options = {"epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch, "batch_size": args.batch_size,
               "tile": args.tile, "base_channels": args.base_channels, "depth": args.depth,
               "padding": args.padding, "batch_norm": args.batch_norm, "optimizer": args.optimizer,
               "lr": args.lr, "weight_decay": args.weight_decay, "schedule": args.schedule, "warmup": args.warmup,
               "elastic": args.elastic,
               "elastic_sigma": args.elastic_sigma, "loss": args.loss, "dice_weight": args.dice_weight,
               "w0": args.w0, "class_weights": args.class_weights, "channels_last": args.channels_last,
               "cpu_bfloat16": args.cpu_bfloat16,
               "n_held_out": args.held_out, "n_validation": args.validation, "seed": args.seed}
    os.makedirs(args.output, exist_ok=True)
    try:
        trainer = train_recipe(output=args.output, device=args.device, amp=args.amp, n_threads=args.threads,
                               progress=args.progress, log=os.path.join(args.output, "train.log"),
                               **options)
    except ValueError as error:
        raise SystemExit(f"fastscratch train unet: {error}") from error
    held_out = trainer.slices["held_out"]
    if held_out:
        from ..datasets import load_isbi2012
        from .train import prepare_data

        images, labels = load_isbi2012()
        image, label = prepare_data(images[held_out[:1]], labels[held_out[:1]])
        prediction = predict_tiled(trainer.model, image[0], amp=trainer.use_amp).argmax(axis=0)
        plot_prediction(os.path.join(args.output, "prediction.png"), image[0], label[0], prediction,
                        title=f"U-Net after {trainer.epoch} epochs (held-out slice {held_out[0]})")
    print("saved unet.pt, history.json, learning_curves.png, train.log"
          + (", prediction.png" if held_out else "") + f" in {args.output}")
    return 0
