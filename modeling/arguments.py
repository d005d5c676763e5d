"""Checks of constructor arguments that several networks share."""


def check_dropout(value: float, name: str = "dropout") -> None:
    """ValueError unless ``value`` is a dropout probability in [0, 1) (1 would drop everything)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a dropout probability in [0, 1), got {value!r}")
