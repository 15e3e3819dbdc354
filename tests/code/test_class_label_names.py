"""`request submit --label` takes a class index or the class's name in the newest data version
(users of their own folders know "cat", not 0)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from forgetflow.cli.common import UserInputError
from forgetflow.cli.ops import _class_index


@dataclass
class Version:
    tag: str = "v3"
    info: dict = field(default_factory=lambda: {"classes": ["cat", "Dog", "dog", "owl é"]})


@dataclass
class Repo:
    present: bool = True

    def exists(self) -> bool:
        return self.present

    def version(self) -> Version:
        return Version()


@pytest.mark.parametrize("text, index", [("2", 2), (" 0 ", 0), ("-1", -1), ("cat", 0),
                                         ("CAT", 0), ("Dog", 1), ("dog", 2), ("owl é", 3)])
def test_an_index_or_a_name_resolves(text: str, index: int) -> None:
    assert _class_index(text, Repo()) == index


@pytest.mark.parametrize("text, what", [("DOG", "matches several classes ignoring case"),
                                        ("bird", "names no class")])
def test_an_ambiguous_or_unknown_name_is_refused_with_the_classes_listed(text: str,
                                                                         what: str) -> None:
    with pytest.raises(UserInputError, match=rf"{what} of data version v3 \(0 cat, 1 Dog"):
        _class_index(text, Repo())


def test_a_name_without_a_data_version_says_what_to_run() -> None:
    with pytest.raises(UserInputError, match="data prepare"):
        _class_index("cat", Repo(present=False))
