"""Importers: each maps a file to the IR (:mod:`edgernn.ir`) and never executes anything."""
