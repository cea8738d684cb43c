"""Thin argparse entry points: parse, call the library, print. No logic lives here."""
