"""Where the documentation lives on the web: help texts, reports and error messages link here,
since an installed wheel ships no docs/ folder. README.md and pyproject.toml's project URLs use
the same base (tests/test_first_use.py checks that they agree)."""

DOCS = "https://github.com/edgernn/edgernn/blob/main/docs/"


def doc(page, anchor=None):
    """The URL of a docs page: doc("profiling.md") -> DOCS + "profiling.md"."""
    return DOCS + page + (f"#{anchor}" if anchor else "")
