"""(being written)"""
def env() -> None:
    """(being written)"""
