from common.numbers import clean_decimal, format_significant, parse_number, same_value


def test_clean_decimal_drops_nasa_padding_keeps_exponents() -> None:
    assert clean_decimal("323.21000000") == "323.21"
    assert clean_decimal("12.000") == "12"
    assert clean_decimal("+17.5") == "17.5"
    assert clean_decimal("3.72905e-05") == "3.72905e-05"
    assert clean_decimal("-0.000") == "0"


def test_parse_number_refuses_catalogue_blanks() -> None:
    for blank in ("", "nan", "None", "inf", "-inf"):
        assert parse_number(blank) is None
    assert parse_number("1e3") == 1000.0


def test_format_significant() -> None:
    assert format_significant(3.57 / 317.8284, 3) == "0.0112"
    assert format_significant(4914.89849, 4) == "4915"


def test_same_value_within_rounding_or_a_thousandth() -> None:
    assert same_value("326.03", "326.03000000")
    assert same_value("1.29", "1.2904")  # rounding of the coarser text
    assert same_value("15.464", "15.47")  # 0.04 %
    assert not same_value("326.03", "323.21")
    assert not same_value("0.231", "0.238")
    assert same_value("G8 III", "G8 III")
    assert not same_value("G8 III", "K0 III")
