"""Output format names, importable without the renderers (and pydantic) behind them."""

FORMATS = ("table", "json")
DIFF_FORMATS = ("table", "json", "markdown")
