"""Output format names, importable without the renderers (and pydantic) behind them: the CLI
checks --format before any heavy import or work."""

FORMATS = ("table", "json")
DIFF_FORMATS = ("table", "json", "markdown")
