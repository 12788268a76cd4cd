from llmxmr.ids import PAPER_ID_RE, make_paper_id, slugify


def test_id_is_slug_plus_hash_and_stable():
    pid = make_paper_id("Attention Is All You Need", "text")
    assert pid.startswith("attention-is-all-you-need-")
    assert len(pid.rsplit("-", 1)[1]) == 6
    assert pid == make_paper_id("Attention Is All You Need", "text")
    assert PAPER_ID_RE.match(pid)


def test_same_title_different_text_gives_different_ids():
    assert make_paper_id("Survey", "one") != make_paper_id("Survey", "two")


def test_title_and_text_are_separated_in_the_hash():
    # "ab" + "c" and "a" + "bc" must not collide just because they concatenate alike.
    assert make_paper_id("ab", "c").rsplit("-", 1)[1] != make_paper_id("a", "bc").rsplit("-", 1)[1]


def test_slug_is_short():
    slug = slugify("A very long title with many words that goes on and on")
    assert slug == "a-very-long-title-with"
    assert len(slugify("Supercalifragilisticexpialidocious " * 5)) <= 40
    assert len(slugify("x" * 100)) == 40


def test_non_ascii_titles():
    assert slugify("Über Café-Größe") == "uber-cafe-grosse"
    chinese = make_paper_id("大型语言模型综述", "内容")
    assert chinese.startswith("doc-") and PAPER_ID_RE.match(chinese)
    assert make_paper_id("大型语言模型综述", "内容") != make_paper_id("另一个标题", "内容")
    assert slugify("Transformers 变换器 2024") == "transformers-2024"
    assert slugify("") == "doc"
    assert slugify("!!! ???") == "doc"


def test_ids_never_contain_marker_delimiters():
    for title in ["[@a; b], c", "  --lead-- ", "C++ & C#: a comparison", "ÅÆØ-Œuvre"]:
        pid = make_paper_id(title, "t")
        assert PAPER_ID_RE.match(pid), pid
        assert "--" not in pid
