"""One error type for faults the user has to fix, shown as a single line."""


class VicokdError(Exception):
    """Bad input or state: the message names the file and the fault, in one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
