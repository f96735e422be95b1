"""(being written)"""
def plan() -> None:
    """(being written)"""
