"""FACS action units: the codes the schema accepts and the names instructions show.

Codes are written "AU" + two digits ("AU04"), as OpenFace and Emotion-LLaMA's MERR write them.
"""

from __future__ import annotations

import re

# FACS main codes (Ekman, Friesen & Hager 2002): the facial action units a face-analysis tool reports.
AU_NAMES: dict[str, str] = {
    "AU01": "inner brow raiser",
    "AU02": "outer brow raiser",
    "AU04": "brow lowerer",
    "AU05": "upper lid raiser",
    "AU06": "cheek raiser",
    "AU07": "lid tightener",
    "AU08": "lips toward each other",
    "AU09": "nose wrinkler",
    "AU10": "upper lip raiser",
    "AU11": "nasolabial deepener",
    "AU12": "lip corner puller",
    "AU13": "sharp lip puller",
    "AU14": "dimpler",
    "AU15": "lip corner depressor",
    "AU16": "lower lip depressor",
    "AU17": "chin raiser",
    "AU18": "lip pucker",
    "AU19": "tongue show",
    "AU20": "lip stretcher",
    "AU21": "neck tightener",
    "AU22": "lip funneler",
    "AU23": "lip tightener",
    "AU24": "lip pressor",
    "AU25": "lips part",
    "AU26": "jaw drop",
    "AU27": "mouth stretch",
    "AU28": "lip suck",
    "AU41": "lid droop",
    "AU42": "slit",
    "AU43": "eyes closed",
    "AU44": "squint",
    "AU45": "blink",
    "AU46": "wink",
}

_LOOSE_CODE = re.compile(r"^\s*(?:AU)?\s*0*(\d{1,2})\s*$", re.IGNORECASE)


def is_au_code(code: object) -> bool:
    """True for a canonical FACS code of AU_NAMES ("AU04"), False for anything else."""
    return isinstance(code, str) and code in AU_NAMES


def normalize_au_code(text: str) -> str | None:
    """"AU4", "au04", "4" -> "AU04"; None when `text` names no FACS action unit."""
    match = _LOOSE_CODE.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    code = f"AU{int(match.group(1)):02d}"
    return code if code in AU_NAMES else None
