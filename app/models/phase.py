"""The phases of the care chain (DOMAIN.md), shared by episodes and plan actions."""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    lvm_anmalan = "lvm_anmalan"
    lvm_utredning = "lvm_utredning"
    omedelbart_omhandertagande = "omedelbart_omhandertagande"
    lvm_ansokan = "lvm_ansokan"
    lvm_vard = "lvm_vard"
    vard_i_annan_form = "vard_i_annan_form"
    utskrivning = "utskrivning"
    eftervard = "eftervard"
    avslutad = "avslutad"
