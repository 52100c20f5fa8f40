"""Sensor lines: one sample of F numbers per text line, e.g. CSV on standard input.

A :class:`LineSource` reads a text stream line by line as the lines arrive (a serial bridge,
a replay script, another program's stdout) and yields each sample as float32 [1, F]. Fields
are separated by commas, semicolons, tabs or spaces. Empty lines and lines starting with ``#``
are ignored; a first line that is not numbers is a header and is skipped. A line with another
number of fields than F, or a field that is not a finite number (a NaN would stay in a
recurrent state for good), is skipped and counted
(:attr:`LineSource.skipped`, :attr:`LineSource.first_bad`): a live source keeps going past one
garbled line, and the report at the end (:meth:`LineSource.report`) says how many there were.
:attr:`LineSource.samples` counts the samples given.
"""
import re

import numpy as np

SEPARATORS = re.compile(r"[,;\s]+")


class LineSource:
    def __init__(self, stream, fields):
        self.stream, self.fields = stream, int(fields)
        self.lines = self.skipped = self.samples = 0
        self.first_bad = None               # (line number, why) of the first skipped line

    def _bad(self, why):
        self.skipped += 1
        if self.first_bad is None:
            self.first_bad = (self.lines, why)

    def __iter__(self):
        header_possible = True
        for line in self.stream:
            self.lines += 1
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            parts = [p for p in SEPARATORS.split(text) if p]
            try:
                values = [float(p) for p in parts]
            except ValueError:
                if not header_possible:
                    self._bad("a field is not a number")
                header_possible = False
                continue
            header_possible = False
            if len(values) != self.fields:
                self._bad(f"{len(values)} fields, not {self.fields}")
                continue
            row = np.asarray(values, np.float32).reshape(1, self.fields)
            if not np.isfinite(row).all():
                self._bad("a field is not a finite float32 number")
                continue
            self.samples += 1
            yield row

    def report(self, out):
        """Say how many lines were skipped, and why the first one was."""
        if self.skipped:
            line, why = self.first_bad
            print(f"edgernn: skipped {self.skipped} of {self.lines} input lines (the first: line {line}, {why})",
                  file=out)
