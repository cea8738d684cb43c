"""Dataset adapters on small fixtures in each dataset's real layout, and on ../shared data."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from lean_kd.audio.io import write_wav
from lean_kd.data.adapters import ADAPTERS, load_index, missing_audio_files
from lean_kd.data.adapters.esc50 import ESC50_CLASSES
from lean_kd.errors import ConfigError, DataError

ESC50_HEADER = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
FSD50K_DEV_HEADER = ["fname", "labels", "mids", "split"]
US8K_HEADER = ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"]


def write_csv(path: Path, header: list[str] | None, rows: list[list[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def split_sizes(index) -> tuple[int, int, int]:
    return tuple(len(index.split(s)) for s in ("train", "val", "test"))


def tiny_wav(path: Path, *, sample_rate: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, np.full(80, 0.1, dtype=np.float32), sample_rate=sample_rate)
    return path


# ---------------------------------------------------------------- ESC-50


def esc50_row(fold: int, target: int, take: str = "A", category: str | None = None) -> list:
    name = f"{fold}-{1000 + target}-{take}-{target}.wav"
    category = category or ESC50_CLASSES[target]
    return [name, fold, target, category, target in (0, 1, 10, 20), 1000 + target, take]


@pytest.fixture
def esc50_root(tmp_path: Path) -> Path:
    rows = [esc50_row(f, t) for f, t in [(1, 0), (1, 3), (2, 10), (3, 49), (4, 3), (5, 20)]]
    write_csv(tmp_path / "meta" / "esc50.csv", ESC50_HEADER, rows)
    for row in rows:
        tiny_wav(tmp_path / "audio" / row[0])
    return tmp_path


def test_esc50_fixture_ids_folds_and_splits(esc50_root: Path) -> None:
    index = load_index("esc50", esc50_root)
    assert index.class_names == ESC50_CLASSES and index.num_classes == 50
    assert [e.labels for e in index.examples] == [(0,), (3,), (10,), (49,), (3,), (20,)]
    assert [e.fold for e in index.examples] == [1, 1, 2, 3, 4, 5]
    assert {e.split for e in index.examples} == {"train"}
    assert index.examples[0].path == str(esc50_root / "audio" / "1-1000-A-0.wav")
    assert index.examples[0].example_id == "1-1000-A-0"
    assert missing_audio_files(index) == []
    folds = index.with_folds(test_folds=[1], val_folds=[2])
    assert split_sizes(folds) == (3, 1, 2)


def test_esc50_esc10_only_renumbers_to_ten_classes(esc50_root: Path) -> None:
    index = load_index("esc50", esc50_root, esc10_only=True)
    assert index.class_names == (
        "dog", "rooster", "rain", "sea_waves", "crackling_fire", "crying_baby", "sneezing",
        "clock_tick", "helicopter", "chainsaw",
    )  # fmt: skip
    assert [(e.example_id, e.labels) for e in index.examples] == [
        ("1-1000-A-0", (0,)),
        ("2-1010-A-10", (2,)),
        ("5-1020-A-20", (5,)),
    ]


def test_esc50_category_target_mismatch_names_file(tmp_path: Path) -> None:
    write_csv(tmp_path / "meta" / "esc50.csv", ESC50_HEADER, [esc50_row(1, 3, category="dog")])
    with pytest.raises(DataError, match=r"1-1003-A-3\.wav.*'dog' does not match target 3.*'cow'"):
        load_index("esc50", tmp_path)


def test_esc50_esc10_flag_on_other_category(tmp_path: Path) -> None:
    write_csv(tmp_path / "meta" / "esc50.csv", ESC50_HEADER, [esc50_row(1, 3)[:4] + [True, 1, "A"]])
    with pytest.raises(DataError, match=r"1-1003-A-3\.wav: esc10 is True but 'cow' is not"):
        load_index("esc50", tmp_path, esc10_only=True)


def test_esc50_missing_csv_names_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"Metadata file not found: .*meta/esc50\.csv"):
        load_index("esc50", tmp_path)


def test_esc50_missing_columns_named(tmp_path: Path) -> None:
    write_csv(tmp_path / "meta" / "esc50.csv", ["filename", "fold"], [["a.wav", 1]])
    with pytest.raises(DataError, match=r"missing column\(s\) \['target', 'category'\]"):
        load_index("esc50", tmp_path)


@pytest.mark.parametrize(
    "row, message",
    [
        (["1-1-A-0.wav", 6, 0, "dog", "True", 1, "A"], r"line 2: fold 6 outside 1\.\.5"),
        (["1-1-A-0.wav", 1, 50, "dog", "True", 1, "A"], r"line 2: target 50 outside 0\.\.49"),
        (["1-1-A-0.wav", "x", 0, "dog", "True", 1, "A"], r"line 2: column 'fold' is 'x'"),
    ],
)
def test_esc50_bad_values_name_the_row(tmp_path: Path, row: list, message: str) -> None:
    write_csv(tmp_path / "meta" / "esc50.csv", ESC50_HEADER, [row])
    with pytest.raises(DataError, match=message):
        load_index("esc50", tmp_path)


def test_esc50_real_sample(esc50_sample_root: Path) -> None:
    index = load_index("esc50", esc50_sample_root)
    assert len(index.examples) == 14 and index.num_classes == 50
    for example in index.examples:  # official names end in -{target}.wav
        assert example.labels == (int(example.example_id.rsplit("-", 1)[1]),)
        assert example.fold == int(example.example_id.split("-", 1)[0])
    counts = index.class_counts()
    assert {n: c for n, c in counts.items() if c} == {
        "cow": 4, "rain": 1, "wind": 2, "thunderstorm": 2, "crying_baby": 2,
        "keyboard_typing": 1, "clock_alarm": 2,
    }  # fmt: skip
    assert missing_audio_files(index) == []


# ---------------------------------------------------------------- UrbanSound8K


def test_urbansound8k_fixture(tmp_path: Path) -> None:
    rows = [
        ["100-0-0-1.wav", 100, 0, 1, 1, 1, 0, "air_conditioner"],
        ["101-3-0-2.wav", 101, 0, 1, 2, 2, 3, "dog_bark"],
        ["102-9-1-0.wav", 102, 1, 2, 1, 10, 9, "street_music"],
    ]
    write_csv(tmp_path / "metadata" / "UrbanSound8K.csv", US8K_HEADER, rows)
    index = load_index("urbansound8k", tmp_path)
    assert index.num_classes == 10 and index.class_names[3] == "dog_bark"
    assert [(e.labels, e.fold) for e in index.examples] == [((0,), 1), ((3,), 2), ((9,), 10)]
    assert index.examples[2].path == str(tmp_path / "audio" / "fold10" / "102-9-1-0.wav")
    assert len(index.with_folds(test_folds=[10]).split("test")) == 1
    assert len(missing_audio_files(index)) == 3


def test_urbansound8k_class_mismatch_and_bad_fold(tmp_path: Path) -> None:
    csv_path = tmp_path / "metadata" / "UrbanSound8K.csv"
    write_csv(csv_path, US8K_HEADER, [["a.wav", 1, 0, 1, 1, 1, 3, "siren"]])
    with pytest.raises(DataError, match=r"a\.wav: class 'siren' does not match classID 3"):
        load_index("urbansound8k", tmp_path)
    write_csv(csv_path, US8K_HEADER, [["a.wav", 1, 0, 1, 1, 11, 8, "siren"]])
    with pytest.raises(DataError, match=r"fold 11 outside 1\.\.10"):
        load_index("urbansound8k", tmp_path)


# ---------------------------------------------------------------- FSD50K


@pytest.fixture
def fsd50k_root(tmp_path: Path) -> Path:
    truth = tmp_path / "FSD50K.ground_truth"
    vocabulary = [[0, "Bark", "/m/05tny_"], [1, "Dog", "/m/0bt9lr"], [2, "Music", "/m/04rlf"]]
    write_csv(truth / "vocabulary.csv", None, vocabulary)
    write_csv(
        truth / "dev.csv",
        FSD50K_DEV_HEADER,
        [
            [64760, "Bark,Dog", "/m/05tny_,/m/0bt9lr", "train"],
            [16399, "Music", "/m/04rlf", "train"],
            [21201, "Dog,Music", "/m/0bt9lr,/m/04rlf", "val"],
        ],
    )
    write_csv(
        truth / "eval.csv",
        ["fname", "labels", "mids"],
        [[37199, "Music,Bark,Dog", "/m/04rlf,/m/05tny_,/m/0bt9lr"], [175151, "Dog", "/m/0bt9lr"]],
    )
    return tmp_path


def test_fsd50k_fixture_multi_hot(fsd50k_root: Path) -> None:
    index = load_index("fsd50k", fsd50k_root)
    assert index.multi_label and index.class_names == ("Bark", "Dog", "Music")
    assert split_sizes(index) == (2, 1, 2)
    np.testing.assert_array_equal(
        index.label_matrix(index.examples),
        [[1, 1, 0], [0, 0, 1], [0, 1, 1], [1, 1, 1], [0, 1, 0]],
    )
    assert index.examples[0].path == str(fsd50k_root / "FSD50K.dev_audio" / "64760.wav")
    assert index.examples[3].path == str(fsd50k_root / "FSD50K.eval_audio" / "37199.wav")
    assert len(load_index("fsd50k", fsd50k_root, include_eval=False).examples) == 3


def test_fsd50k_unknown_label_names_row(fsd50k_root: Path) -> None:
    dev = fsd50k_root / "FSD50K.ground_truth" / "dev.csv"
    write_csv(dev, FSD50K_DEV_HEADER, [[1, "Dog", "", "train"], [2, "Cat,Dog", "", "val"]])
    with pytest.raises(DataError, match=r"dev\.csv, line 3: unknown label\(s\) \['Cat'\]"):
        load_index("fsd50k", fsd50k_root)


def test_fsd50k_bad_split_and_vocabulary(fsd50k_root: Path) -> None:
    truth = fsd50k_root / "FSD50K.ground_truth"
    write_csv(truth / "dev.csv", FSD50K_DEV_HEADER, [[1, "Dog", "", "test"]])
    with pytest.raises(DataError, match=r"line 2: split 'test', expected one of \('train', 'v"):
        load_index("fsd50k", fsd50k_root)
    write_csv(truth / "vocabulary.csv", None, [[0, "Bark", "/m/1"], [5, "Dog", "/m/2"]])
    with pytest.raises(DataError, match=r"vocabulary index 5, expected 1"):
        load_index("fsd50k", fsd50k_root)


# ---------------------------------------------------------------- FSDD


@pytest.fixture
def fsdd_fixture(tmp_path: Path) -> Path:
    for digit in (3, 7):
        for speaker in ("ana", "bo"):
            for index in range(10):
                tiny_wav(tmp_path / "recordings" / f"{digit}_{speaker}_{index}.wav")
    return tmp_path


def test_fsdd_fixture_split_by_index(fsdd_fixture: Path) -> None:
    index = load_index("fsdd", fsdd_fixture, val_fraction=0)
    assert index.class_names == tuple("0123456789")
    assert split_sizes(index) == (20, 0, 20)
    for example in index.examples:
        digit, _, number = example.example_id.split("_")
        assert example.labels == (int(digit),)
        assert example.split == ("test" if int(number) < 5 else "train")
    same = load_index("fsdd", fsdd_fixture / "recordings", val_fraction=0)
    assert same.fingerprint() == index.fingerprint()


def test_fsdd_odd_files_warned_or_strict(fsdd_fixture: Path) -> None:
    tiny_wav(fsdd_fixture / "recordings" / "three_ana_1.wav")
    (fsdd_fixture / "recordings" / "notes.txt").write_text("x")
    with pytest.warns(UserWarning, match=r"fsdd: 2 file\(s\) not named .*notes\.txt.*three_ana_1"):
        index = load_index("fsdd", fsdd_fixture)
    assert len(index.examples) == 40
    with pytest.raises(DataError, match=r"2 file\(s\) not named"):
        load_index("fsdd", fsdd_fixture, strict=True)


def test_fsdd_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"fsdd: no examples found under"):
        load_index("fsdd", tmp_path)


def test_fsdd_real(fsdd_root: Path) -> None:
    index = load_index("fsdd", fsdd_root)
    assert len(index.examples) == 3000 and index.num_classes == 10
    assert len(index.split("test")) == 300  # index 0-4 x 10 digits x 6 speakers
    assert 0.07 < len(index.split("val")) / 2700 < 0.13
    assert set(index.class_counts("test").values()) == {30}
    assert all(e.labels == (int(e.example_id[0]),) for e in index.examples)
    assert load_index("fsdd", fsdd_root).fingerprint() == index.fingerprint()


# ---------------------------------------------------------------- folder per class


def test_folder_class_layout(tmp_path: Path) -> None:
    for rel in ("dog/a.wav", "dog/sub/b.wav", "bird/c.wav", "cat/d.flac"):
        tiny_wav(tmp_path / rel) if rel.endswith(".wav") else _flac(tmp_path / rel)
    (tmp_path / "dog" / "notes.txt").write_text("x")
    with pytest.warns(UserWarning, match=r"1 file\(s\) outside a class folder or not .*notes\.txt"):
        index = load_index("folder", tmp_path)
    assert index.class_names == ("bird", "cat", "dog")
    assert {e.example_id: e.labels for e in index.examples} == {
        "bird/c": (0,),
        "cat/d": (1,),
        "dog/a": (2,),
        "dog/sub/b": (2,),
    }
    assert {e.split for e in index.examples} == {"train"}


def test_folder_split_layout(tmp_path: Path) -> None:
    for rel in ("train/b/1.wav", "train/a/2.wav", "train/a/3.wav", "test/b/4.wav", "val/c/5.ogg"):
        tiny_wav(tmp_path / rel) if rel.endswith(".wav") else _ogg(tmp_path / rel)
    index = load_index("folder", tmp_path)
    assert index.class_names == ("a", "b", "c")
    assert {(e.split, e.labels) for e in index.examples} == {
        ("train", (1,)),
        ("train", (0,)),
        ("test", (1,)),
        ("val", (2,)),
    }
    assert len(index.split("train")) == 3


def test_folder_without_classes(tmp_path: Path) -> None:
    tiny_wav(tmp_path / "loose.wav")
    with pytest.raises(DataError, match=r"no class folders under"):
        load_index("folder", tmp_path)


def _flac(path: Path) -> None:
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.zeros(80, dtype=np.float32), 8000, format="FLAC")


def _ogg(path: Path) -> None:
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.zeros(800, dtype=np.float32), 8000, format="OGG")


# ---------------------------------------------------------------- CSV manifest

MANIFEST_HEADER = ["path", "labels", "split", "fold", "id"]


def test_csv_manifest_with_classes_file(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("siren\nengine\n\nbird\n")
    write_csv(
        tmp_path / "manifest.csv",
        MANIFEST_HEADER,
        [
            ["audio/s0.wav", "siren", "train", 1, "s0"],
            ["audio/m1.wav", "engine; siren", "val", 2, ""],
            ["/abs/b2.wav", "bird", "", "", "b2"],
            ["audio/e3.wav", "engine", "test", 3, "e3"],
        ],
    )
    index = load_index("csv", tmp_path)
    assert index.class_names == ("siren", "engine", "bird") and index.multi_label
    assert [e.labels for e in index.examples] == [(0,), (0, 1), (2,), (1,)]
    assert [e.split for e in index.examples] == ["train", "val", "train", "test"]
    assert [e.fold for e in index.examples] == [1, 2, 0, 3]
    assert [e.example_id for e in index.examples] == ["s0", "audio/m1.wav", "b2", "e3"]
    assert index.examples[0].path == str(tmp_path / "audio" / "s0.wav")
    assert index.examples[2].path == "/abs/b2.wav"


def test_csv_manifest_minimal_columns_and_file_root(tmp_path: Path) -> None:
    manifest = write_csv(tmp_path / "my.csv", ["labels", "path"], [["b", "x.wav"], ["a", "y.wav"]])
    index = load_index("csv", manifest, name="mine")
    assert index.name == "mine" and index.class_names == ("a", "b") and not index.multi_label
    assert [(e.labels, e.split, e.fold, e.example_id) for e in index.examples] == [
        ((1,), "train", 0, "x.wav"),
        ((0,), "train", 0, "y.wav"),
    ]
    assert load_index("csv", manifest, multi_label=True).multi_label


def test_csv_manifest_unknown_label(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("siren\n")
    rows = [["a.wav", "siren"], ["b.wav", "sirne"]]
    write_csv(tmp_path / "manifest.csv", ["path", "labels"], rows)
    message = r"manifest\.csv, line 3: unknown label\(s\) \['sirne'\] \(not in .*classes\.txt"
    with pytest.raises(DataError, match=message):
        load_index("csv", tmp_path)


@pytest.mark.parametrize(
    "header, row, message",
    [
        (["path"], ["a.wav"], r"missing column\(s\) \['labels'\]"),
        (["path", "labels"], ["a.wav", " ; "], r"line 2: column 'labels' holds no label"),
        (["path", "labels"], ["", "x"], r"line 2: column 'path' is empty"),
        (["path", "labels", "split"], ["a.wav", "x", "dev"], r"line 2: split 'dev', expected"),
        (["path", "labels", "fold"], ["a.wav", "x", "one"], r"line 2: column 'fold' is 'one'"),
    ],
)
def test_csv_manifest_bad_rows(tmp_path: Path, header: list, row: list, message: str) -> None:
    write_csv(tmp_path / "manifest.csv", header, [row])
    with pytest.raises(DataError, match=message):
        load_index("csv", tmp_path)


def test_csv_manifest_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"Metadata file not found: .*manifest\.csv"):
        load_index("csv", tmp_path)


# ---------------------------------------------------------------- registry


def test_registry_names_and_errors(tmp_path: Path) -> None:
    assert set(ADAPTERS) == {"esc50", "urbansound8k", "fsd50k", "fsdd", "folder", "csv"}
    with pytest.raises(DataError, match=r"Unknown dataset 'audioset'; known datasets: \['csv', "):
        load_index("audioset", tmp_path)
    with pytest.raises(DataError, match=r"esc50: dataset root .*nowhere does not exist"):
        load_index("esc50", tmp_path / "nowhere")
    message = r"unknown option\(s\) \['esc_10'\]; accepted: \['esc10_only'\]"
    with pytest.raises(ConfigError, match=message):
        load_index("ESC50", tmp_path, esc_10=True)
