"""Small emotion-wheel folders in the official layout (format.csv, synonym.xlsx, wheel1..5.xlsx), made up here."""

from __future__ import annotations

import csv
from pathlib import Path

# Five wheels over the same few emotions, cut differently, as the official five are.
WHEELS = {
    1: {"Happy": {"Joyful": ["Cheerful", "Delighted"], "Content": ["Calm"]}, "Sad": {"Lonely": ["Isolated"], "Down": ["Gloomy"]},
        "Mad": {"Angry": ["Furious"]}},
    2: {"Joy": {"Cheerful": ["Delighted", "Happy"]}, "Sadness": {"Gloomy": ["Down", "Sad"], "Lonely": ["Isolated"]}, "Anger": {"Furious": ["Angry"]}},
    3: {"Positive": {"Happy": ["Cheerful", "Calm"]}, "Negative": {"Sad": ["Gloomy", "Lonely"], "Angry": ["Furious"]}},
    4: {"Happy": {"Delighted": ["Cheerful"]}, "Sad": {"Down": ["Gloomy", "Lonely"]}, "Angry": {"Furious": ["Mad"]},
        "Surprised": {"Amazed": ["Astonished"]}},
    5: {"Joy": {"Calm": ["Content"], "Cheerful": ["Happy", "Delighted"]}, "Sad": {"Lonely": ["Isolated", "Gloomy"]}},
}
# format.csv: a name and its word forms (lower-case, as the official file is).
FORMS = {
    "happy": ["happily", "happiness", "happier"],
    "joyful": ["joy", "joyfully"],
    "cheerful": ["cheer", "cheerfully"],
    "sad": ["sadly", "sadness"],
    "gloomy": ["gloom"],
    "furious": ["fury", "furiously"],
    "angry": ["anger", "angrily"],
    "lonely": ["loneliness", "lone"],
    "glad": ["gladly"],
    "astonished": ["astonishment"],
    "upset": [],
}
# synonym.xlsx, two runs: a wheel word and its synonyms.
SYNONYMS = {
    1: [("Happy", "glad, joyful"), ("sad", "upset, gloomy"), ("Furious", "enraged"), ("lonely", "")],
    2: [("happy", "['glad', 'cheerful']"), ("Angry", "mad, enraged"), ("astonished", "amazed")],
}


def write_wheel_folder(folder: Path) -> Path:
    import openpyxl

    folder.mkdir(parents=True, exist_ok=True)
    for number, tree in WHEELS.items():
        book = openpyxl.Workbook()
        sheet = book.active
        sheet.append(["level1", "level2", "level3"])
        for level1, children in tree.items():
            first1 = True
            for level2, words in children.items():
                first2 = True
                for word in words:
                    # Empty cells below a filled one, as merged cells read: the official reader repeats the cell above.
                    sheet.append([level1 if first1 else None, level2 if first2 else None, word])
                    first1 = first2 = False
        book.save(folder / f"wheel{number}.xlsx")
    with open(folder / "format.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "format"])
        for name, forms in FORMS.items():
            writer.writerow([name, ",".join(forms)])
    book = openpyxl.Workbook()
    sheet = book.active
    runs = sorted(SYNONYMS)
    sheet.append([c for run in runs for c in (f"word_run{run}", f"synonym_run{run}")])
    for i in range(max(len(v) for v in SYNONYMS.values())):
        row = []
        for run in runs:
            row += list(SYNONYMS[run][i]) if i < len(SYNONYMS[run]) else [None, None]
        sheet.append(row)
    book.save(folder / "synonym.xlsx")
    return folder
