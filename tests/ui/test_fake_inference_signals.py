"""FakeInferenceService speaks with the real service's signals, so a UI test cannot pass
against a fake that lacks (or misnames) a signal the window connects to."""

from __future__ import annotations

from fake_inference import FakeInferenceService
from PySide6.QtCore import QMetaMethod, QMetaObject, QObject, SignalInstance

from llamadesk.services.inference import InferenceService
from llamadesk.services.inference_api import InferenceApi


def public_signals(meta: QMetaObject) -> set[str]:
    """The signatures of the public signals a class adds to QObject's own."""
    own = QObject.staticMetaObject.methodCount()
    signatures = (meta.method(i) for i in range(own, meta.methodCount()))
    return {bytes(m.methodSignature().data()).decode() for m in signatures
            if m.methodType() == QMetaMethod.MethodType.Signal
            and not bytes(m.name().data()).startswith(b"_")}


def test_the_fake_has_exactly_the_real_services_signals() -> None:
    real = public_signals(InferenceService.staticMetaObject)
    assert "generation_ended(int,PyObject)" in real  # the walk reads signatures
    assert public_signals(FakeInferenceService.staticMetaObject) == real


def test_every_signal_of_the_protocol_is_on_both() -> None:
    # The protocol's annotations are strings (postponed); its signals are SignalInstance.
    wanted = {name for name, hint in InferenceApi.__annotations__.items()
              if hint in ("SignalInstance", SignalInstance)}
    assert "generation_ended" in wanted
    for cls in (InferenceService, FakeInferenceService):
        names = {s.split("(")[0] for s in public_signals(cls.staticMetaObject)}
        assert wanted <= names, (cls.__name__, sorted(wanted - names))
