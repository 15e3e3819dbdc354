"""`request submit --label` takes a class name in the newest data version or a class index
(users of their own folders know "cat", not 0). An exact name wins: folders named 0..10 sort
as text, so "2" names class 3 there."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

import pytest

from forgetflow.cli.common import UserInputError
from forgetflow.cli.ops import _class_index

WORDS = ["cat", "Dog", "dog", "owl é"]
NUMBERS = ["0", "1", "10", "2", "3"]  # how folders 0, 1, 2, 3, 10 sort


@dataclass
class Version:
    classes: list[str]
    tag: str = "v3"
    info: dict = field(init=False)

    def __post_init__(self) -> None:
        self.info = {"classes": self.classes}


@dataclass
class Repo:
    classes: list[str] = field(default_factory=lambda: list(WORDS))
    present: bool = True

    def exists(self) -> bool:
        return self.present

    def version(self) -> Version:
        return Version(self.classes)


@pytest.mark.parametrize("text, index", [
    ("2", 2), (" 0 ", 0), ("-1", -1), ("cat", 0), ("CAT", 0), ("Dog", 1), ("dog", 2),
    (" cat ", 0), ("owl é", 3), (unicodedata.normalize("NFD", "owl é"), 3)])
def test_a_name_or_an_index_resolves(text: str, index: int) -> None:
    assert _class_index(text, Repo())[0] == index


@pytest.mark.parametrize("text, index", [("2", 3), ("10", 2), ("0", 0), ("03", 3), ("4", 4)])
def test_numeric_folder_names_win_over_indices(text: str, index: int) -> None:
    assert _class_index(text, Repo(NUMBERS))[0] == index


def test_the_resolved_class_is_named() -> None:
    assert _class_index("2", Repo(NUMBERS)) == (3, "2")
    assert _class_index("1", Repo()) == (1, "Dog")
    assert _class_index("7", Repo()) == (7, None)  # outside: refused later, with the range


@pytest.mark.parametrize("text, what", [("DOG", "matches several classes ignoring case"),
                                        ("bird", "names no class"), ("+1", "names no class"),
                                        ("١", "names no class")])
def test_an_ambiguous_or_unknown_name_is_refused_with_the_classes_listed(text: str,
                                                                         what: str) -> None:
    with pytest.raises(UserInputError, match=rf"{what} of data version v3 \(0 cat, 1 Dog"):
        _class_index(text, Repo())


def test_an_empty_label_or_a_name_without_a_data_version_says_what_to_do() -> None:
    with pytest.raises(UserInputError, match="--label is empty"):
        _class_index("  ", Repo())
    with pytest.raises(UserInputError, match="data prepare"):
        _class_index("cat", Repo(present=False))
    assert _class_index("3", Repo(present=False)) == (3, None)
