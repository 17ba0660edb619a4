from ghafgen.profile.toml_lines import key_lines, line_of


def test_tables_keys_and_dotted_keys():
    text = (
        "a = 1\n"  # 1
        "[t]\n"  # 2
        "x.y = 2\n"  # 3
        "\n"  # 4
        '[hardware.nvidia."pass throughs".uarta]\n'  # 5
        "vm = 'v'\n"  # 6
    )
    lines = key_lines(text)
    assert lines[("a",)] == 1
    assert lines[("t",)] == 2
    assert lines[("t", "x")] == 3
    assert lines[("t", "x", "y")] == 3
    assert lines[("hardware", "nvidia", "pass throughs", "uarta")] == 5
    assert lines[("hardware", "nvidia", "pass throughs", "uarta", "vm")] == 6


def test_multiline_strings_and_arrays_do_not_confuse_the_scanner():
    text = (
        'a = """\n'  # 1
        "[not.a.table]\n"  # 2
        'b = 1 """\n'  # 3
        "c = [\n"  # 4
        '  "x", # comment ]\n'  # 5
        "  'y',\n"  # 6
        "]\n"  # 7
        "d = '''q''''\n"  # 8
        "e = { f = 1, g = [1,\n 2] }\n"  # 9
        'h = "esc \\" [x]"\n'  # 11
        "[i]\n"  # 12
    )
    lines = key_lines(text)
    assert ("not",) not in lines and ("b",) not in lines
    assert lines[("c",)] == 4
    assert lines[("c", 0)] == 5
    assert lines[("c", 1)] == 6
    assert lines[("d",)] == 8
    assert lines[("e", "g")] == 9
    assert lines[("h",)] == 11
    assert lines[("i",)] == 12


def test_array_of_tables_are_indexed():
    text = "[[a]]\nx = 1\n[[a]]\nx = 2\n"
    lines = key_lines(text)
    assert lines[("a", 0, "x")] == 2
    assert lines[("a", 1, "x")] == 4


def test_escaped_quoted_key():
    lines = key_lines('"a\\u0062" = 1\n')
    assert lines[("ab",)] == 1


def test_line_of_falls_back_to_nearest_ancestor():
    lines = {("t",): 3, ("t", "k"): 4}
    assert line_of(lines, ("t", "k", 0)) == 4
    assert line_of(lines, ("t", "missing")) == 3
    assert line_of(lines, ("zzz",)) == 1
