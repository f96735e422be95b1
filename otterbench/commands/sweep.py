"""(being written)"""
def sweep() -> None:
    """(being written)"""
