"""The interactive explorer (`layerscope tui`). Imported only by that command and its tests: the core
never imports textual."""

from layerscope.tui.app import LayerscopeApp, create_app

__all__ = ["LayerscopeApp", "create_app"]
