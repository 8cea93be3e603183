"""Persistent storage controllers: the PV binder and the PVC/PV protection controllers."""
from kubelite.controllers.persistentvolume.binder import PersistentVolumeController
from kubelite.controllers.persistentvolume.protection import PVCProtectionController, PVProtectionController

__all__ = ["PersistentVolumeController", "PVCProtectionController", "PVProtectionController"]
