; LlamaDesk for Windows: a per-user installer, no administrator rights needed.
;
;   makensis /DVERSION=0.1.0 /DBUNDLE_DIR=C:\...\dist\llamadesk /DOUTFILE=C:\...\setup.exe ^
;            packaging\windows\installer.nsi
;
; BUNDLE_DIR is PyInstaller's one-folder output (LlamaDesk.exe, llamadesk-cli.exe and
; _internal\ with the bundled model). packaging/build.py passes all three defines.
; The script also compiles with Debian's makensis, which is how CI checks it on Linux.
;
; Silent install (the release workflow uses it):  setup.exe /S [/D=C:\target\folder]
; Silent uninstall:  "%LOCALAPPDATA%\Programs\LlamaDesk\Uninstall.exe" /S
;   (add /PURGE to also delete conversations, settings and downloaded models)
;
; With /DSIGN_COMMAND=<command> (build.py passes it when WINDOWS_SIGNING is set), the
; uninstaller is signed as makensis writes it into the setup (!uninstfinalize), and the
; setup once it is written (!finalize): an unsigned Uninstall.exe would otherwise ship
; inside a signed installer.

Unicode true
ManifestDPIAware true
RequestExecutionLevel user
SetCompressor /SOLID lzma
SetCompressorDictSize 64

!ifndef VERSION
  !error "pass /DVERSION=x.y.z (packaging/build.py reads it from pyproject.toml)"
!endif
!ifndef BUNDLE_DIR
  !error "pass /DBUNDLE_DIR=<PyInstaller one-folder output>"
!endif
!ifndef OUTFILE
  !define OUTFILE "LlamaDesk-${VERSION}-windows-x64-setup.exe"
!endif

!ifdef SIGN_COMMAND
  !finalize '${SIGN_COMMAND} "%1"' = 0
  !uninstfinalize '${SIGN_COMMAND} "%1"' = 0
!endif

!define APP_NAME "LlamaDesk"
!define APP_EXE "LlamaDesk.exe"
!define CLI_EXE "llamadesk-cli.exe"
!define PUBLISHER "LlamaDesk"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${APP_NAME}"
!define LLAMA_LIB_DIR "_internal\llama_cpp\lib"
; Where the app keeps the user's data: platformdirs' user_data_dir / user_config_dir /
; user_cache_dir / user_log_dir for "LlamaDesk" all live under %LOCALAPPDATA%\LlamaDesk.
!define USER_DATA_DIR "$LOCALAPPDATA\${APP_NAME}"

; Refuse to build an installer whose bundle would not start: the exes must be there,
; and llama.cpp's OpenMP runtime must sit next to llama.dll (Windows looks for a DLL's
; dependencies in that DLL's folder when llama_cpp loads it with add_dll_directory;
; without vcomp140.dll, loading ggml-cpu.dll fails on machines without the VC++
; redistributable, with "could not find module 'llama.dll' (or one of its dependencies)").
!if ! /FileExists "${BUNDLE_DIR}\${APP_EXE}"
  !error "${BUNDLE_DIR}\${APP_EXE} not found: build the bundle first (packaging/build.py)"
!endif
!if ! /FileExists "${BUNDLE_DIR}\${CLI_EXE}"
  !error "${BUNDLE_DIR}\${CLI_EXE} not found: build the bundle first (packaging/build.py)"
!endif
!if ! /FileExists "${BUNDLE_DIR}\${LLAMA_LIB_DIR}\llama.dll"
  !error "llama.dll not found in ${BUNDLE_DIR}\${LLAMA_LIB_DIR}"
!endif
!if ! /FileExists "${BUNDLE_DIR}\${LLAMA_LIB_DIR}\vcomp140.dll"
  !ifdef VCOMP140
    !define VCOMP140_EXTRA
  !else
    !error "vcomp140.dll is not next to llama.dll in the bundle; pass /DVCOMP140=<path to vcomp140.dll>"
  !endif
!endif

Name "${APP_NAME}"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\Programs\${APP_NAME}"
InstallDirRegKey HKCU "${UNINSTALL_KEY}" "InstallLocation"
BrandingText "${APP_NAME} ${VERSION}"
VIProductVersion "${VERSION}.0"
VIAddVersionKey /LANG=1033 "ProductName" "${APP_NAME}"
VIAddVersionKey /LANG=1033 "ProductVersion" "${VERSION}"
VIAddVersionKey /LANG=1033 "FileVersion" "${VERSION}"
VIAddVersionKey /LANG=1033 "FileDescription" "${APP_NAME} installer"
VIAddVersionKey /LANG=1033 "CompanyName" "${PUBLISHER}"
VIAddVersionKey /LANG=1033 "LegalCopyright" "Apache-2.0"

!include "MUI2.nsh"
!include "FileFunc.nsh"
!include "LogicLib.nsh"
!include "x64.nsh"

!define MUI_ICON "${BUNDLE_DIR}\_internal\resources\icons\llamadesk.ico"
!define MUI_UNICON "${BUNDLE_DIR}\_internal\resources\icons\llamadesk.ico"
!define MUI_ABORTWARNING
!define MUI_COMPONENTSPAGE_NODESC
!define MUI_FINISHPAGE_RUN "$INSTDIR\${APP_EXE}"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${APP_NAME}"
!define MUI_UNCOMPONENTSPAGE_TEXT_TOP \
  "${APP_NAME} will be removed. Your conversations, settings and downloaded models \
are kept unless you tick the box below."

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH

!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_COMPONENTS
!insertmacro MUI_UNPAGE_INSTFILES

!insertmacro MUI_LANGUAGE "English"

; A running copy keeps its exe and DLLs locked: replacing them half-way would leave a
; mix of two versions. An exe that is running cannot be opened for writing.
!macro CHECK_NOT_RUNNING UN
Function ${UN}CheckNotRunning
  retry:
  StrCpy $R9 ""
  ${If} ${FileExists} "$INSTDIR\${APP_EXE}"
    ClearErrors
    FileOpen $R8 "$INSTDIR\${APP_EXE}" a
    ${If} ${Errors}
      StrCpy $R9 "${APP_EXE}"
    ${Else}
      FileClose $R8
    ${EndIf}
  ${EndIf}
  ${If} ${FileExists} "$INSTDIR\${CLI_EXE}"
    ClearErrors
    FileOpen $R8 "$INSTDIR\${CLI_EXE}" a
    ${If} ${Errors}
      StrCpy $R9 "${CLI_EXE}"
    ${Else}
      FileClose $R8
    ${EndIf}
  ${EndIf}
  ${If} $R9 != ""
    ${If} ${Silent}
      SetErrorLevel 5
      Quit
    ${EndIf}
    MessageBox MB_RETRYCANCEL|MB_ICONEXCLAMATION \
      "${APP_NAME} is running ($R9). Close it, then click Retry." IDRETRY retry
    Quit
  ${EndIf}
FunctionEnd
!macroend
!insertmacro CHECK_NOT_RUNNING ""
!insertmacro CHECK_NOT_RUNNING "un."

Function .onInit
  ; The bundle is 64-bit only (x64; Windows on Arm runs it through its x64 emulation).
  ${IfNot} ${RunningX64}
    MessageBox MB_OK|MB_ICONSTOP "${APP_NAME} needs 64-bit Windows." /SD IDOK
    SetErrorLevel 4
    Quit
  ${EndIf}
FunctionEnd

Section "${APP_NAME} (with its bundled model)" SecApp
  SectionIn RO
  Call CheckNotRunning
  SetOutPath "$INSTDIR"
  ; An older version's files are replaced whole, so nothing stale is loaded.
  RMDir /r "$INSTDIR\_internal"
  File /r "${BUNDLE_DIR}\*"
!ifdef VCOMP140_EXTRA
  SetOutPath "$INSTDIR\${LLAMA_LIB_DIR}"
  File "${VCOMP140}"
  SetOutPath "$INSTDIR"
!endif

  WriteUninstaller "$INSTDIR\Uninstall.exe"

  CreateDirectory "$SMPROGRAMS\${APP_NAME}"
  CreateShortcut "$SMPROGRAMS\${APP_NAME}\${APP_NAME}.lnk" "$INSTDIR\${APP_EXE}" "" \
    "$INSTDIR\${APP_EXE}" 0
  CreateShortcut "$SMPROGRAMS\${APP_NAME}\Uninstall ${APP_NAME}.lnk" "$INSTDIR\Uninstall.exe"

  ; Per-user "Apps & features" entry: HKCU, so no administrator rights are needed.
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "${APP_NAME}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\${APP_EXE},0"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\Uninstall.exe"'
  WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\Uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  IntFmt $0 "0x%08X" $0
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "EstimatedSize" "$0"
SectionEnd

Section /o "Desktop shortcut" SecDesktop
  CreateShortcut "$DESKTOP\${APP_NAME}.lnk" "$INSTDIR\${APP_EXE}" "" "$INSTDIR\${APP_EXE}" 0
SectionEnd

Section "un.${APP_NAME}" UnSecApp
  SectionIn RO
  Call un.CheckNotRunning
  ; Remove only what the installer put there: the folder may have been chosen by the
  ; user, and RMDir /r on it could take their own files with it.
  Delete "$INSTDIR\${APP_EXE}"
  Delete "$INSTDIR\${CLI_EXE}"
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\Uninstall.exe"
  RMDir "$INSTDIR"

  Delete "$SMPROGRAMS\${APP_NAME}\${APP_NAME}.lnk"
  Delete "$SMPROGRAMS\${APP_NAME}\Uninstall ${APP_NAME}.lnk"
  RMDir "$SMPROGRAMS\${APP_NAME}"
  Delete "$DESKTOP\${APP_NAME}.lnk"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"
SectionEnd

; Unticked by default: chats and models are the user's, and survive a reinstall.
Section /o "un.Also delete my conversations, settings and downloaded models" UnSecUserData
  RMDir /r "${USER_DATA_DIR}"
SectionEnd

Function un.onInit
  ; /PURGE on the command line ticks the box for silent uninstalls.
  ${GetParameters} $R0
  ClearErrors
  ${GetOptions} $R0 "/PURGE" $R1
  ${IfNot} ${Errors}
    !insertmacro SelectSection ${UnSecUserData}
  ${EndIf}
FunctionEnd
