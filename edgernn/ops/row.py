"""How an op declares its program row, once: named fields, and the extents its kernel reads and
writes, with their lengths given by the op's own shape rule.

A plan's program is an int64 array ``prog[n_rows, WIDTH]``. Column 0 of a row holds the native
address of the row's kernel (written when the plan is linked, :func:`edgernn.engine.link`);
columns 1.. are the op's fields, in the order its :class:`RowLayout` declares them. An op
module declares its row and kernel together::

    ROW = RowLayout("dense", [
        Field("x", "work offset of x [rows, k]", work(lambda r: r.rows * r.k)),
        Field("y", "work offset of y [rows, n]", work(lambda r: r.rows * r.n, writes=True)),
        Field("w", "weight panels [k -> n]", matrix("k", lambda r: [r.n], "w_scale", "w_matvec")),
        Field("w_scale", "int8 scales offset (-1: float32 weights)"),
        Field("rows"), Field("k"), Field("n"),
    ])
    F = ROW.fields          # column indices by name: the kernel reads row[F.x]

    @ROW.kernel
    @jit
    def dense_kernel(row, fparams, consts, qconsts, work, seq): ...

``F`` is a namedtuple of ints at module level, so Numba compiles ``row[F.x]`` to a load at a
constant column: names cost nothing at run time. Every kernel has the one signature of
:data:`KERNEL_ARGS` (the engine calls it through its address).

An *extent* says which arena a field points into and how many elements from there the kernel
touches, computed from the row's own fields (``r.rows * r.k``), never from the tensor the
field was made from: :meth:`RowLayout.extents` is what ``Plan.validate`` checks against the
arenas before any kernel runs (Numba compiles without bounds checks), so what is checked is
what the kernel reads. An optional extent is skipped when its field is -1.
"""
from collections import namedtuple

import numpy as np

from ..errors import UnsupportedModelError
from .program import MAX_RANK

WIDTH = 32                  # int64 columns per program row (column 0: the kernel's address)
#: the last two columns of every row: its gate (:func:`edgernn.engine.execute` runs the row
#: from frame ``due`` on, every ``period``-th frame, by the stream's clock at work offset
#: row[GATE_CLOCK] - 1; row[GATE_FROM] = due | period << 32; GATE_CLOCK 0: always run). The
#: streaming pass gates the ops whose input is not due yet, or comes every s-th frame.
GATE_CLOCK, GATE_FROM = WIDTH - 2, WIDTH - 1

WORK, CONST, QCONST, FPARAM = "work", "consts", "qconsts", "fparams"
REGION_CONST, REGION_WORK = 0, 1          # the values of a region field (an operand in either arena)

LAYOUTS = {}                # name -> RowLayout, every declared row


class Extent:
    """A range [offset, offset + length) in one arena. ``region`` is an arena name, or the name
    of a field holding REGION_CONST / REGION_WORK. ``length(r)`` (r: the row's fields by name)
    returns the element count. ``span(r)`` may instead return (first, count) relative to the
    field's value, for strided access that starts below it."""

    def __init__(self, region, length=None, span=None, writes=False, optional=True):
        self.region, self.length, self.span = region, length, span
        self.writes, self.optional = writes, optional


def work(length, writes=False, optional=True):
    return Extent(WORK, length, writes=writes, optional=optional)


def const(length, optional=True):
    return Extent(CONST, length, optional=optional)


def fparam(count):
    return Extent(FPARAM, lambda r: count, optional=True)


def ranked_dims(r):
    """The dims[:rank] of a row with ``rank`` and ``dims[MAX_RANK]`` fields; (-1,) when the rank
    is out of range (so its extents come out negative and are refused)."""
    return r.dims[:r.rank] if 1 <= r.rank <= MAX_RANK else (-1,)


def ranked_fields(*stride_fields):
    """The fields of a strided access over up to MAX_RANK axes: rank, dims and one strides
    field per operand (each [MAX_RANK]; :func:`strided` reads them)."""
    return [Field("rank", "axes used (1..6)"), Field("dims", "the shape, merged", count=MAX_RANK)] + [
        Field(name, f"{doc} per axis", count=MAX_RANK) for name, doc in stride_fields]


def element_count(dims):
    """Product of dims; -1 when any is negative."""
    total = 1
    for d in dims:
        if d < 0:
            return -1
        total *= d
    return total


def strided_span(dims, strides):
    """(first, count) of the elements an access over ``dims`` with ``strides`` touches, from its
    lowest to its highest element, relative to its offset; (0, -1) for a negative dim."""
    if min(dims) < 0:
        return 0, -1
    if min(dims) == 0:
        return 0, 0
    low = sum((d - 1) * s for d, s in zip(dims, strides) if s < 0)
    high = sum((d - 1) * s for d, s in zip(dims, strides) if s > 0)
    return low, high - low + 1


def strided(region, strides_field, writes=False):
    """A strided access from the field's offset over the row's ranked dims with the strides in
    ``strides_field``: the extent runs from its lowest to its highest element."""
    return Extent(region, span=lambda r: strided_span(ranked_dims(r), getattr(r, strides_field)), writes=writes,
                  optional=False)


class MatrixExtent(Extent):
    """A panel weight matrix (:mod:`edgernn.ops.matvec`) of k inputs and ``groups(r)`` column
    groups (their output counts): float32 in consts when the scale field is -1, else int8 in
    qconsts with one float32 scale per padded column in consts. The field named ``matvec``
    receives, when the plan is linked, the address of the matvec variant for this matrix's
    panel width and kind (:func:`matvec_variant`). ``reads_bytes``: the kernel also reads the
    panels itself (not only through ``add_matvec``), so they must keep the plain layout (no
    int8 activations for them, :mod:`edgernn.ops.matvec_dot`)."""

    def __init__(self, k, groups, scale, matvec, reads_bytes=False):
        super().__init__(CONST, optional=False)
        self.k, self.groups, self.scale, self.matvec = k, groups, scale, matvec
        self.reads_bytes = reads_bytes


def matrix(k, groups, scale, matvec, reads_bytes=False):
    """k: a field name or function of the row; groups: function of the row -> [outputs, ...];
    scale, matvec: the names of the fields with its scales' offset and its matvec's address;
    reads_bytes: see :class:`MatrixExtent`."""
    return MatrixExtent(k, groups, scale, matvec, reads_bytes)


#: one matrix of a program row: its matvec field's column, panel lanes (0: an empty matrix),
#: int8 or not, offset (consts or qconsts), inputs, panels, and MatrixExtent.reads_bytes
MatrixUse = namedtuple("MatrixUse", "column lanes int8 offset k panels reads_bytes")


def matrix_uses(layout, row):
    """[MatrixUse] of the row's matrices, in field order."""
    from .matvec import panel_lanes, padded_columns
    r = layout.view(row)
    out = []
    for f in layout.field_list:
        e = f.extent
        if isinstance(e, MatrixExtent):
            groups = e.groups(r)
            lanes = panel_lanes(groups) if groups and min(groups) > 0 else 0
            out.append(MatrixUse(layout.columns[e.matvec][0], lanes, getattr(r, e.scale) >= 0, getattr(r, f.name),
                                 _value(e.k, r), padded_columns(groups) // lanes if lanes else 0, e.reads_bytes))
    return out


def matvec_variant(layout, row, dot_offsets=()):
    """[(column, lanes, kind)]: for each matrix of the row, the column of its matvec field and
    the variant it needs (``matvec.FLOAT32``, ``INT8``, or ``INT8_DOT`` for an int8 matrix at
    an offset in ``dot_offsets``, the matrices the plan interleaved)."""
    from .matvec import FLOAT32, INT8, INT8_DOT
    return [(u.column, u.lanes, INT8_DOT if u.int8 and u.offset in dot_offsets else INT8 if u.int8 else FLOAT32)
            for u in matrix_uses(layout, row)]


class Field:
    """One named column of a row. ``extent``: what the field points at (None: a plain number).
    ``count``: columns taken (e.g. dims[6]); the row view gives a tuple then."""

    def __init__(self, name, doc="", extent=None, count=1):
        self.name, self.doc, self.extent, self.count = name, doc, extent, count


class RowView:
    """A row's fields by name (the Python side of ``row[F.name]``)."""

    def __init__(self, layout, row):
        self._layout, self._row = layout, row

    def __getattr__(self, name):
        col, count = self._layout.columns[name]
        if count == 1:
            return int(self._row[col])
        return tuple(int(v) for v in self._row[col:col + count])


def _value(rule, r):
    return getattr(r, rule) if isinstance(rule, str) else int(rule(r))


class RowLayout:
    def __init__(self, name, fields):
        if name in LAYOUTS:
            raise ValueError(f"internal: row layout {name!r} declared twice")
        self.name, self.field_list = name, list(fields)
        self.columns, col = {}, 1
        for f in self.field_list:
            self.columns[f.name] = (col, f.count)
            col += f.count
        if col > GATE_CLOCK:
            raise ValueError(f"internal: row {name!r} needs {col} columns, more than {GATE_CLOCK}")
        self.fields = namedtuple(f"{name.title().replace('_', '')}Fields", list(self.columns))(
            *[c for c, _ in self.columns.values()])
        self.kernel_function = None
        LAYOUTS[name] = self

    def variant(self, name):
        """A layout with these very fields under another name, for a second kernel that runs
        the same rows (e.g. an op's common case, compiled without its general code): emit
        picks one per row."""
        return RowLayout(name, self.field_list)

    def kernel(self, dispatcher):
        """Decorator: the jitted kernel that runs rows of this layout."""
        self.kernel_function = dispatcher
        return dispatcher

    def make(self, values):
        """An int64 row from {field name: int or sequence}; every field must be given."""
        missing = set(self.columns) - set(values)
        extra = set(values) - set(self.columns)
        if missing or extra:
            raise UnsupportedModelError(f"internal: row {self.name!r} missing {sorted(missing)}, "
                                        f"unknown {sorted(extra)}")
        row = np.zeros(WIDTH, np.int64)
        for name, (col, count) in self.columns.items():
            v = values[name]
            if count == 1:
                row[col] = int(v)
            else:
                v = [int(x) for x in v]
                if len(v) != count:
                    raise UnsupportedModelError(f"internal: row {self.name!r} field {name} takes {count} values")
                row[col:col + count] = v
        return row

    def view(self, row):
        return RowView(self, row)

    def extents(self, row):
        """[(field name, arena, first, count, writes)] that a row of this layout touches, per
        the declared extents. Raises UnsupportedModelError for a negative count."""
        r = self.view(row)
        out = []
        for f in self.field_list:
            e = f.extent
            if e is None:
                continue
            off = getattr(r, f.name)
            if e.optional and off == -1:
                continue
            region = e.region
            if region not in (WORK, CONST, QCONST, FPARAM):
                region = CONST if getattr(r, region) == REGION_CONST else WORK
            if isinstance(e, MatrixExtent):
                out += self._matrix_extents(f.name, r, e, off)
                continue
            if e.span is not None:
                first, count = e.span(r)
                out.append((f.name, region, off + first, count, e.writes))
            else:
                out.append((f.name, region, off, _value(e.length, r), e.writes))
        return out

    def _matrix_extents(self, name, r, e, off):
        from .matvec import padded_columns
        k, columns = _value(e.k, r), padded_columns(e.groups(r))
        if k < 1 or columns < 1:            # no matvec variant exists for an empty matrix
            return [(name, CONST, off, -1, False)]
        scale = getattr(r, e.scale)
        if scale < 0:
            return [(name, CONST, off, k * columns, False)]
        return [(name, QCONST, off, k * columns, False), (e.scale, CONST, scale, columns, False)]


def check_row(layout, row, sizes, where):
    """Raise unless every extent of ``row`` lies inside its arena (``sizes``: arena -> length)
    and every count is non-negative."""
    for name, region, first, count, _ in layout.extents(row):
        if first < 0 or count < 0 or first + count > sizes[region]:
            raise UnsupportedModelError(
                f"{where} ({layout.name}): field {name} reaches {first}..{first + count} of the "
                f"{region} arena of {sizes[region]} elements; the model's tensors do not match its op")
    clock = int(row[GATE_CLOCK])
    if clock and not (1 <= clock and clock - 1 + 3 <= sizes[WORK]):     # the clock's 3 values
        raise UnsupportedModelError(f"{where} ({layout.name}): its gate's clock {clock - 1} lies outside the "
                                    f"work arena of {sizes[WORK]} elements")
