"""What goes into the bundle: the file-name rules llamadesk.spec applies, kept here so
that tests can check them against each platform's layout (tests/packaging).

Standard library only: the spec imports it inside PyInstaller.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

# --- llama.cpp's shared libraries ----------------------------------------------------------
#: The names llama_cpp passes to ctypes (llama_cpp/_ctypes_extensions.py).
CTYPES_NAMES = frozenset({"libllama.so", "libmtmd.so", "libllama.dylib", "libmtmd.dylib",
                          "llama.dll", "mtmd.dll"})
LIB_SUFFIX = re.compile(r"\.(so(\.\d+)*|dylib|dll|metal)$")
#: libggml.so.0.9.4, libggml.0.9.4.dylib: the real file behind CMake's symlink chain.
FULL_VERSION = re.compile(r"\.so\.\d+\.\d+(\.\d+)*$|\.\d+\.\d+\.\d+\.dylib$")
_UNVERSIONED = re.compile(r"^(?P<stem>.+)\.(?P<ext>so|dylib)$")


def soname(name: str) -> str | None:
    """The name other libraries link against (ELF soname, Mach-O install name) for an
    unversioned ``name``: libggml.so -> libggml.so.0, libggml.dylib -> libggml.0.dylib."""
    match = _UNVERSIONED.match(name)
    if not match:
        return None
    stem, ext = match["stem"], match["ext"]
    return f"{stem}.so.0" if ext == "so" else f"{stem}.0.dylib"


def plan_llama_libs(names: Iterable[str], same: Callable[[str, str], bool]
                    ) -> tuple[list[str], dict[str, str]]:
    """Which of llama_cpp/lib's files to copy, and which names to ship as symlinks.

    Wheels store CMake's symlinks (libX.so -> libX.so.0 -> libX.so.0.1.2, and the
    .dylib equivalents) as three copies. The bundle keeps the soname copy, which the
    other libraries link against; the name ctypes loads becomes a symlink to it, so
    one copy of each library is shipped and loaded (two copies of libllama would hold
    two separate states). ``same(a, b)`` says whether two files have the same bytes.
    """
    present = set(names)
    copies: list[str] = []
    links: dict[str, str] = {}
    for name in sorted(present):
        if not LIB_SUFFIX.search(name) or FULL_VERSION.search(name):
            continue
        target = soname(name)
        if target and target in present and same(name, target):
            if name in CTYPES_NAMES:
                links[name] = target
            continue
        copies.append(name)
    return copies, links


#: The x86 instruction sets ggml-cpu reports in llama_print_system_info() when its code
#: was compiled to use them (ggml-cpu.c: ggml_cpu_has_avx2() is ``defined(__AVX2__)``).
X86_FEATURES = frozenset({"SSE3", "SSSE3", "AVX", "AVX2", "F16C", "FMA", "BMI2", "AVX_VNNI",
                          "AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AMX_INT8"})


def x86_features(system_info: str) -> frozenset[str]:
    """The x86 instruction sets a llama.cpp build needs, from its system info."""
    found = {m.group(1) for m in re.finditer(r"\b([A-Z0-9_]+) = 1\b", system_info)}
    return frozenset(found & X86_FEATURES)


# --- Qt -------------------------------------------------------------------------------------
#: Qt's translations: PySide6/Qt/translations on Linux and macOS, PySide6/translations on
#: Windows (PyInstaller's QtLibraryInfo.qt_rel_dir).
QT_TRANSLATIONS = re.compile(r"PySide6[\\/](Qt[\\/])?translations[\\/]")
#: Translations to keep (locale codes such as "de", "fr"); the UI is English for now.
KEEP_QT_LANGUAGES: tuple[str, ...] = ()
# Qt plugins for displays and devices a desktop chat app never meets. The GTK 3
# platform theme is left out too: it would load the user's libgtk-3 next to the build
# machine's copies of cairo, pango and gdk-pixbuf that it drags into the bundle (a
# known source of "undefined symbol" crashes on GNOME); Qt then uses its portal/Fusion
# look, which needs none of them.
UNUSED_QT_PLUGINS = re.compile(
    r"plugins[\\/](designer|qmltooling|sqldrivers|printsupport|egldeviceintegrations|"
    r"wayland-graphics-integration-server|platforms[\\/]\w*(eglfs|linuxfb|vnc|minimalegl|"
    r"vkkhrdisplay)\w*|platformthemes[\\/]libqgtk3)"
)


def keep_data(dest: str, languages: tuple[str, ...] = KEEP_QT_LANGUAGES) -> bool:
    """False for a Qt translation in none of ``languages``."""
    if QT_TRANSLATIONS.search(dest):
        return any(re.search(rf"_{lang}(_\w+)?\.qm$", dest) for lang in languages)
    return True


def keep_binary(dest: str) -> bool:
    """False for a Qt plugin the app never uses."""
    return not UNUSED_QT_PLUGINS.search(dest)
