"""(being written)"""
def report() -> None:
    """(being written)"""


def compare() -> None:
    """(being written)"""


def check() -> None:
    """(being written)"""


def export() -> None:
    """(being written)"""
