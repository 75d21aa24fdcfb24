"""The hint editor (`photochrom hints edit`): a local, token-protected web page and its server.

server.py serves page.html and checks and saves hint documents; everything that needs the
scan or a model goes through a `Renderer` (renderer.py), which restore/editing.py implements.
"""

from hints.editor.renderer import OVERVIEW_LONG_SIDE, PREVIEW_LONG_SIDE, Renderer
from hints.editor.server import TOKEN_HEADER, EditorServer, EditorSession, default_hints_path, make_server

__all__ = [
    "OVERVIEW_LONG_SIDE", "PREVIEW_LONG_SIDE", "TOKEN_HEADER", "EditorServer", "EditorSession", "Renderer",
    "default_hints_path", "make_server",
]
