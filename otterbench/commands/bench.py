"""(being written)"""
def bench_insert() -> None:
    """(being written)"""
