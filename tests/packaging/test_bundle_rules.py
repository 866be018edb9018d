"""packaging/bundle_rules.py: which of llama.cpp's libraries are copied, linked or left
out on each OS, and which Qt files are filtered, checked against the paths PyInstaller's
own Qt hook code gives on Windows, macOS and Linux."""

from __future__ import annotations

import importlib.util
import ntpath
import posixpath
from types import ModuleType

import pytest
from packaging_helpers import PACKAGING


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("llamadesk_bundle_rules",
                                                  PACKAGING / "bundle_rules.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rules = load()

# What a llama-cpp-python 0.3.x wheel's llama_cpp/lib holds: CMake's symlink chains
# (libX -> libX.0 -> libX.0.N.M) stored as copies.
LINUX_LIB = ["libggml-base.so", "libggml-base.so.0", "libggml-base.so.0.9.4",
             "libggml-cpu.so", "libggml-cpu.so.0", "libggml-cpu.so.0.9.4",
             "libggml.so", "libggml.so.0", "libggml.so.0.9.4",
             "libllama.so", "libllama.so.0", "libllama.so.0.0.7000",
             "libmtmd.so", "libmtmd.so.0", "libmtmd.so.0.0.7000"]
MACOS_LIB = ["libggml-base.dylib", "libggml-base.0.dylib", "libggml-base.0.9.4.dylib",
             "libggml-blas.dylib", "libggml-blas.0.dylib", "libggml-blas.0.9.4.dylib",
             "libggml-cpu.dylib", "libggml-cpu.0.dylib", "libggml-cpu.0.9.4.dylib",
             "libggml-metal.dylib", "libggml-metal.0.dylib", "libggml-metal.0.9.4.dylib",
             "libggml.dylib", "libggml.0.dylib", "libggml.0.9.4.dylib",
             "libllama.dylib", "libllama.0.dylib", "libllama.0.0.7000.dylib",
             "libmtmd.dylib", "libmtmd.0.dylib", "libmtmd.0.0.7000.dylib"]
WINDOWS_LIB = ["ggml-base.dll", "ggml-cpu.dll", "ggml.dll", "llama.dll", "mtmd.dll",
               "llama.lib", "ggml.lib"]


def stem(name: str) -> str:
    """libggml.0.9.4.dylib -> libggml: copies of one library share their stem."""
    return name.split(".")[0]


def same_library(a: str, b: str) -> bool:
    return stem(a) == stem(b)


def test_linux_keeps_each_soname_once_and_links_the_ctypes_names() -> None:
    copies, links = rules.plan_llama_libs(LINUX_LIB, same_library)
    assert copies == ["libggml-base.so.0", "libggml-cpu.so.0", "libggml.so.0",
                      "libllama.so.0", "libmtmd.so.0"]
    assert links == {"libllama.so": "libllama.so.0", "libmtmd.so": "libmtmd.so.0"}


def test_macos_keeps_each_install_name_once_and_links_the_ctypes_names() -> None:
    copies, links = rules.plan_llama_libs(MACOS_LIB, same_library)
    assert copies == ["libggml-base.0.dylib", "libggml-blas.0.dylib", "libggml-cpu.0.dylib",
                      "libggml-metal.0.dylib", "libggml.0.dylib", "libllama.0.dylib",
                      "libmtmd.0.dylib"]
    assert links == {"libllama.dylib": "libllama.0.dylib", "libmtmd.dylib": "libmtmd.0.dylib"}
    assert len({stem(n) for n in copies}) == len(copies), "one copy of each library"


def test_windows_dlls_are_copied_as_they_are() -> None:
    copies, links = rules.plan_llama_libs(WINDOWS_LIB, same_library)
    assert copies == ["ggml-base.dll", "ggml-cpu.dll", "ggml.dll", "llama.dll", "mtmd.dll"]
    assert links == {}


def test_a_library_whose_copies_differ_is_kept_whole() -> None:
    copies, links = rules.plan_llama_libs(["libllama.so", "libllama.so.0"], lambda a, b: False)
    assert copies == ["libllama.so", "libllama.so.0"] and links == {}


def test_x86_features_come_from_llama_cpps_system_info() -> None:
    info = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | "
            "BMI2 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |")
    assert rules.x86_features(info) == {"SSE3", "SSSE3", "AVX", "AVX2", "F16C", "FMA", "BMI2"}
    assert rules.x86_features("Metal : EMBED_LIBRARY = 1 | CPU : NEON = 1 | ARM_FMA = 1 |") \
        == frozenset()


@pytest.fixture(params=["win32", "darwin", "linux"])
def qt_layout(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
              ) -> tuple[str, str, object]:
    """(platform, Qt's folder in the bundle, path module) as PyInstaller's Qt hook code
    (PyInstaller.utils.hooks.qt.QtLibraryInfo) computes them for that platform."""
    compat = pytest.importorskip("PyInstaller.compat")
    from PyInstaller.utils.hooks import qt

    platform = request.param
    monkeypatch.setattr(compat, "is_win", platform == "win32")
    monkeypatch.setattr(compat, "is_darwin", platform == "darwin")
    monkeypatch.setattr(compat, "is_linux", platform == "linux")
    info = qt.QtLibraryInfo("PySide6")
    return platform, info.qt_rel_dir, ntpath if platform == "win32" else posixpath


@pytest.mark.packaging
def test_qt_translations_are_dropped_on_every_platform(qt_layout: tuple[str, str, object]
                                                       ) -> None:
    platform, qt_dir, path = qt_layout
    join = path.join  # type: ignore[attr-defined]
    # translation_dst in QtLibraryInfo.collect_module: <qt_rel_dir>/translations
    for name in ("qtbase_de.qm", "qt_fr.qm", "qtbase_zh_TW.qm"):
        dest = join(qt_dir.replace("/", "\\") if platform == "win32" else qt_dir,
                    "translations", name)
        assert not rules.keep_data(dest), dest
        assert rules.keep_data(dest, ("de", "fr", "zh")), f"kept when asked for: {dest}"
    assert rules.keep_data(join("resources", "models", "SmolLM2.gguf"))
    assert rules.keep_data(join("PySide6", "__init__.py"))


@pytest.mark.packaging
def test_unused_qt_plugins_are_dropped_and_needed_ones_kept(qt_layout: tuple[str, str, object]
                                                            ) -> None:
    platform, qt_dir, path = qt_layout
    join = path.join  # type: ignore[attr-defined]
    base = qt_dir.replace("/", "\\") if platform == "win32" else qt_dir
    ext = {"win32": ".dll", "darwin": ".dylib", "linux": ".so"}[platform]
    prefix = "" if platform == "win32" else "lib"
    platform_plugin = {"win32": "qwindows", "darwin": "qcocoa", "linux": "qxcb"}[platform]

    def plugin(kind: str, name: str) -> str:
        # plugin_dst_dir in QtLibraryInfo.collect_plugins: <qt_rel_dir>/plugins/<type>
        return join(base, "plugins", kind, f"{prefix}{name}{ext}")

    for kind, name in (("platforms", platform_plugin), ("platforms", "qoffscreen"),
                       ("imageformats", "qsvg"), ("styles", "qmodernwindowsstyle"),
                       ("iconengines", "qsvgicon")):
        assert rules.keep_binary(plugin(kind, name)), plugin(kind, name)
    for kind, name in (("sqldrivers", "qsqlite"), ("printsupport", "cocoaprintersupport"),
                       ("platforms", "qeglfs"), ("platforms", "qvnc"),
                       ("platforms", "qlinuxfb"), ("platforms", "qminimalegl"),
                       ("qmltooling", "qmldbg_debugger"), ("designer", "qpyqmlplugin")):
        assert not rules.keep_binary(plugin(kind, name)), plugin(kind, name)
    if platform == "linux":
        assert not rules.keep_binary(plugin("platformthemes", "qgtk3"))
        assert rules.keep_binary(plugin("platformthemes", "qxdgdesktopportal"))
