"""Checks of class labels shared by the classifiers."""

import numpy as np


def check_label_kinds(y, name="y"):
    """Refuse labels that mix strings with numbers (they cannot be sorted into classes)."""
    if getattr(y, "dtype", None) != object or not y.size:
        return
    is_string = np.fromiter((isinstance(label, str) for label in y.ravel()), bool, y.size)
    if is_string.any() and not is_string.all():
        text, other = y.ravel()[np.argmax(is_string)], y.ravel()[np.argmin(is_string)]
        raise TypeError(f"{name} mixes strings and numbers (e.g. {text!r} and {other!r}), "
                        "which cannot be sorted into classes; make every label a string "
                        "(y.astype(str)) or every label a number.")
