"""Thin Typer commands; each parses options, builds a config and calls the library."""
