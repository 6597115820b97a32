"""Docstring parsing: description and parameter descriptions in three layouts."""

from __future__ import annotations

from threadline.tools._docstring import parse_docstring

GOOGLE = """Get the weather for a city.

    Looks the city up in the forecast service.

    Args:
        city: The city to look up.
        unit (Literal("c", "f")): Temperature unit,
            either c or f.
        *extra: Ignored.

    Returns:
        The forecast as text.
    """

NUMPY = """Get the weather for a city.

    Parameters
    ----------
    city : str
        The city to look up.
    unit : {'c', 'f'}, optional
        Temperature unit,
        either c or f.
    lat, lon : float
        Coordinates.

    Returns
    -------
    str
        The forecast as text.
    """

SPHINX = """Get the weather for a city.

    :param city: The city to look up.
    :param str unit: Temperature unit,
        either c or f.
    :type city: str
    :returns: The forecast as text.
    """


def test_google_style() -> None:
    parsed = parse_docstring(GOOGLE)
    assert parsed.params == {
        "city": "The city to look up.",
        "unit": "Temperature unit, either c or f.",
        "extra": "Ignored.",
    }
    assert parsed.description == (
        "Get the weather for a city.\n\n"
        "Looks the city up in the forecast service.\n\n"
        "Returns:\n    The forecast as text."
    )


def test_numpy_style() -> None:
    parsed = parse_docstring(NUMPY)
    assert parsed.params == {
        "city": "The city to look up.",
        "unit": "Temperature unit, either c or f.",
        "lat": "Coordinates.",
        "lon": "Coordinates.",
    }
    assert parsed.description == (
        "Get the weather for a city.\n\nReturns\n-------\nstr\n    The forecast as text."
    )


def test_sphinx_style() -> None:
    parsed = parse_docstring(SPHINX)
    assert parsed.params == {
        "city": "The city to look up.",
        "unit": "Temperature unit, either c or f.",
    }
    assert parsed.description == ("Get the weather for a city.\n\n:returns: The forecast as text.")


def test_forced_style_ignores_the_others() -> None:
    parsed = parse_docstring(SPHINX, style="google")
    assert parsed.params == {}
    assert ":param city:" in parsed.description
    assert parse_docstring(GOOGLE, style="google").params["city"] == "The city to look up."
    assert parse_docstring(NUMPY, style="numpy").params["city"] == "The city to look up."


def test_empty_and_summary_only() -> None:
    assert parse_docstring(None).description == ""
    assert parse_docstring("").params == {}
    parsed = parse_docstring("  Just a summary.  ")
    assert parsed.description == "Just a summary."
    assert parsed.params == {}


def test_google_section_ends_at_next_heading_and_keeps_paragraphs() -> None:
    doc = """Summary.

    Args:
        query: First paragraph
            continues here.

            Second paragraph.
        limit: How many.
    Raises:
        ValueError: never.
    """
    parsed = parse_docstring(doc)
    assert parsed.params == {
        "query": "First paragraph continues here.\n\nSecond paragraph.",
        "limit": "How many.",
    }
    assert parsed.description == "Summary.\n\nRaises:\n    ValueError: never."


def test_unrelated_colon_headings_stay_in_the_description() -> None:
    doc = """Summary.

    Example:
        tool(city="Paris")
    """
    parsed = parse_docstring(doc)
    assert parsed.params == {}
    assert parsed.description == 'Summary.\n\nExample:\n    tool(city="Paris")'
