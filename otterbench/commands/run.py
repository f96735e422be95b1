"""(being written)"""
def run() -> None:
    """(being written)"""


def suites() -> None:
    """(being written)"""
