"""dmgbuild settings for LlamaDesk's disk image.

    dmgbuild -s packaging/macos/dmg_settings.py -D app=dist/LlamaDesk.app \
        "LlamaDesk 0.1.0" LlamaDesk-0.1.0-macos-arm64.dmg

The window shows the app next to an Applications link over dmgbuild's built-in arrow
background: drag one onto the other to install.
"""

# dmgbuild runs this file with `defines` (the -D values) in its namespace.
import os.path

application = defines.get("app", "dist/LlamaDesk.app")  # type: ignore[name-defined]  # noqa: F821
appname = os.path.basename(application)

# ULFO (lzfse): about as small as UDBZ, much faster to open; macOS 10.11 and later.
format = "ULFO"
filesystem = "HFS+"
size = None  # computed from the contents

files = [application]
symlinks = {"Applications": "/Applications"}
badge_icon = None
icon_locations = {appname: (140, 160), "Applications": (500, 160)}

background = "builtin-arrow"
window_rect = ((200, 120), (640, 360))
default_view = "icon-view"
show_status_bar = False
show_tab_view = False
show_toolbar = False
show_pathbar = False
show_sidebar = False
show_icon_preview = False
icon_size = 128
text_size = 13
