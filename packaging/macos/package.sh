#!/usr/bin/env bash
# Turn LlamaDesk.app into a .dmg; sign, notarise and staple it when the secrets are set.
#
#   packaging/macos/package.sh dist/LlamaDesk.app out/LlamaDesk-0.1.0-macos-arm64.dmg 0.1.0
#
# The .app itself was signed by PyInstaller (packaging/llamadesk.spec): with
# MACOS_CODESIGN_IDENTITY set, every binary with the hardened runtime and
# entitlements.plist; without it, ad hoc. Environment:
#   MACOS_CODESIGN_IDENTITY   "Developer ID Application: Name (TEAMID)", in a keychain
#   APPLE_ID, APPLE_TEAM_ID, APPLE_APP_PASSWORD   notarytool credentials (app-specific
#                             password); all three, or notarisation is skipped
set -euo pipefail

app=$1
dmg=$2
version=$3
here=$(cd "$(dirname "$0")" && pwd)
identity=${MACOS_CODESIGN_IDENTITY:-}

if [[ ! -d "$app/Contents/MacOS" ]]; then
    echo "not an app bundle: $app" >&2
    exit 1
fi

if [[ -n "$identity" ]]; then
    codesign --verify --deep --strict --verbose=2 "$app"
else
    echo "NOTE: not signing with a Developer ID: MACOS_CODESIGN_IDENTITY is not set." \
         "The app is signed ad hoc; Gatekeeper will refuse it on other Macs."
fi

rm -f "$dmg"
# The staging copy keeps PyInstaller's symlinks (Qt frameworks): ditto, never cp -r.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
ditto "$app" "$stage/$(basename "$app")"
python -m dmgbuild -s "$here/dmg_settings.py" -D app="$stage/$(basename "$app")" \
    "LlamaDesk $version" "$dmg"

if [[ -n "$identity" ]]; then
    codesign --force --timestamp --sign "$identity" "$dmg"
fi

if [[ -n "$identity" && -n "${APPLE_ID:-}" && -n "${APPLE_TEAM_ID:-}" \
      && -n "${APPLE_APP_PASSWORD:-}" ]]; then
    xcrun notarytool submit "$dmg" --apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" \
        --password "$APPLE_APP_PASSWORD" --wait
    xcrun stapler staple "$dmg"
    xcrun stapler validate "$dmg"
    spctl --assess --type open --context context:primary-signature --verbose "$dmg"
else
    echo "NOTE: not notarising: needs MACOS_CODESIGN_IDENTITY, APPLE_ID, APPLE_TEAM_ID" \
         "and APPLE_APP_PASSWORD. Users must right-click > Open the first time."
fi
echo "disk image: $dmg"
