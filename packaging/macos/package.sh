#!/usr/bin/env bash
# Turn LlamaDesk.app into a .dmg; sign, notarise and staple both when the secrets are set.
#
#   PYTHON=.venv/bin/python packaging/macos/package.sh dist/LlamaDesk.app \
#       out/LlamaDesk-0.1.0-macos-arm64.dmg 0.1.0
#
# The .app itself was signed by PyInstaller (packaging/llamadesk.spec): with
# MACOS_CODESIGN_IDENTITY set, every binary with the hardened runtime and
# entitlements.plist; without it, ad hoc. Environment:
#   PYTHON                    the build's Python (dmgbuild, release_checks.py); build.py
#                             sets it, so a stray `python` on PATH is never used
#   MACOS_CODESIGN_IDENTITY   "Developer ID Application: Name (TEAMID)", in a keychain
#   APPLE_ID, APPLE_TEAM_ID, APPLE_APP_PASSWORD   notarytool credentials (app-specific
#                             password); all three, or notarisation is skipped
#
# Notarisation order: the .app first, and its ticket stapled to it, so that a copy
# dragged out of the disk image opens offline on first launch; then the .dmg.
set -euo pipefail

app=$1
dmg=$2
version=$3
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:?"set PYTHON to the build's Python (packaging/build.py does)"}
checks="$here/../release_checks.py"
identity=${MACOS_CODESIGN_IDENTITY:-}

if [[ ! -d "$app/Contents/MacOS" ]]; then
    echo "not an app bundle: $app" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

notarise=false
if [[ -n "$identity" && -n "${APPLE_ID:-}" && -n "${APPLE_TEAM_ID:-}" \
      && -n "${APPLE_APP_PASSWORD:-}" ]]; then
    notarise=true
fi

# notarytool exits 0 on "Invalid" too: its JSON status decides, and a rejection
# prints Apple's log, which names every file that failed.
notarise_file() {
    local file=$1 result="$work/notary.json" id_file="$work/notary-id"
    xcrun notarytool submit "$file" --apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" \
        --password "$APPLE_APP_PASSWORD" --wait --timeout 2h --output-format json \
        > "$result" || true
    if ! "$python" "$checks" notary-status "$result" --id-file "$id_file"; then
        cat "$result" >&2 || true
        if [[ -s "$id_file" ]]; then
            xcrun notarytool log "$(cat "$id_file")" --apple-id "$APPLE_ID" \
                --team-id "$APPLE_TEAM_ID" --password "$APPLE_APP_PASSWORD" >&2 || true
        fi
        exit 1
    fi
}

if [[ -n "$identity" ]]; then
    codesign --verify --deep --strict --verbose=2 "$app"
else
    echo "NOTE: not signing with a Developer ID: MACOS_CODESIGN_IDENTITY is not set." \
         "The app is signed ad hoc; Gatekeeper will refuse it on other Macs."
fi

if $notarise; then
    ditto -c -k --keepParent "$app" "$work/app.zip"
    notarise_file "$work/app.zip"
    xcrun stapler staple "$app"
    xcrun stapler validate "$app"
fi

rm -f "$dmg"
# The staging copy keeps PyInstaller's symlinks (Qt frameworks): ditto, never cp -r.
stage="$work/stage"
mkdir "$stage"
ditto "$app" "$stage/$(basename "$app")"
# hdiutil, under dmgbuild, fails now and then with "Resource busy" on CI machines
# (Spotlight or XProtect still holding the new image): try again before giving up.
for attempt in 1 2 3 4; do
    if "$python" -m dmgbuild -s "$here/dmg_settings.py" \
            -D app="$stage/$(basename "$app")" "LlamaDesk $version" "$dmg"; then
        break
    fi
    rm -f "$dmg"
    if [[ $attempt == 4 ]]; then
        echo "dmgbuild failed $attempt times" >&2
        exit 1
    fi
    echo "dmgbuild failed (attempt $attempt); trying again in $((attempt * 15)) s" >&2
    sleep $((attempt * 15))
done

if [[ -n "$identity" ]]; then
    codesign --force --timestamp --sign "$identity" "$dmg"
fi

if $notarise; then
    notarise_file "$dmg"
    xcrun stapler staple "$dmg"
    xcrun stapler validate "$dmg"
    spctl --assess --type open --context context:primary-signature --verbose "$dmg"
else
    echo "NOTE: not notarising: needs MACOS_CODESIGN_IDENTITY, APPLE_ID, APPLE_TEAM_ID" \
         "and APPLE_APP_PASSWORD. Users must right-click > Open the first time."
fi
echo "disk image: $dmg"
