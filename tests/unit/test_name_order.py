"""Vietnamese name order: given name, then family and middle names; the alphabet's
letters (ă, â, đ, ê, ô, ơ, ư are letters of their own) before tones, tones before case."""
from __future__ import annotations

import unicodedata

from shared.name_order import name_parts, sort_key


def _sorted(names):
    return sorted(names, key=sort_key)


def test_the_issue_example_anh_before_yen():
    assert _sorted(["Bùi Gia Yến", "Bùi Gia Ánh"]) == ["Bùi Gia Ánh", "Bùi Gia Yến"]


def test_by_given_name_then_family_then_middle():
    names = ["Trần Văn Bình", "Nguyễn Thị An", "Lê An", "Nguyễn Văn Bình", "Nguyễn An"]
    assert _sorted(names) == ["Lê An", "Nguyễn An", "Nguyễn Thị An", "Nguyễn Văn Bình", "Trần Văn Bình"]
    assert name_parts("Nguyễn Thị Minh Khai") == ("Khai", "Nguyễn", "Thị Minh")


def test_the_alphabet_letters_with_marks_are_letters_of_their_own():
    assert _sorted(["Ân", "Ăn", "An", "Bảo"]) == ["An", "Ăn", "Ân", "Bảo"]
    assert _sorted(["Đức", "Dung", "Em", "Ê"]) == ["Dung", "Đức", "Em", "Ê"]  # d < đ < e < ê
    assert _sorted(["Ơn", "Ôn", "On", "Phúc"]) == ["On", "Ôn", "Ơn", "Phúc"]
    assert _sorted(["Ưng", "Uyên", "Vân"]) == ["Uyên", "Ưng", "Vân"]
    # Without a letter of its own, đ would have sorted among the z's or after everything.
    assert _sorted(["Đào", "Zung", "Dương"]) == ["Dương", "Đào", "Zung"]


def test_tones_only_after_the_letters_in_cldr_order():
    # none, huyền, hỏi, ngã, sắc, nặng
    assert _sorted(["Mạ", "Má", "Mã", "Mả", "Mà", "Ma"]) == ["Ma", "Mà", "Mả", "Mã", "Má", "Mạ"]
    # A tone decides only between the same letters: "Ánh" before "Anht", after "Anh".
    assert _sorted(["Anht", "Ánh", "Anh"]) == ["Anh", "Ánh", "Anht"]
    assert _sorted(["Bình", "Ánh"]) == ["Ánh", "Bình"]


def test_case_and_normal_form_do_not_change_the_order():
    assert sort_key("bùi gia ánh") < sort_key("Bùi Gia Ánh") < sort_key("Bùi Gia Yến")
    composed = "Nguyễn Thị Ánh"
    assert sort_key(unicodedata.normalize("NFD", composed)) == sort_key(composed)


def test_a_shorter_name_first_and_no_name_first_of_all():
    assert _sorted(["An Bình", "An", None, ""]) == [None, "", "An", "An Bình"]
    assert _sorted(["Lê Văn Anh", "Lê Anh"]) == ["Lê Anh", "Lê Văn Anh"]
    assert _sorted(["Learner 10", "Learner 2", "Learner 1"]) == ["Learner 1", "Learner 10", "Learner 2"]


def test_names_from_other_languages_keep_a_stable_order():
    # By the last word too: Ångström (an a with a mark Vietnamese does not use), Lovelace,
    # Zola; letters outside the alphabet (Cyrillic) after it.
    names = ["Ada Lovelace", "Zoë Ångström", "Олег Петров", "Émile Zola"]
    assert _sorted(names) == ["Zoë Ångström", "Ada Lovelace", "Émile Zola", "Олег Петров"]
