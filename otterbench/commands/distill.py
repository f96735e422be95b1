"""(being written)"""
def distill() -> None:
    """(being written)"""
