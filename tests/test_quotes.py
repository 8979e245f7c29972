"""Numbers quoted in the README and reports/README.md equal the committed tables they cite
(``python -m fedbench.report.quotes``), and the quote syntax itself works on a hand-made table."""

import pytest

from fedbench.report import quotes


def test_the_committed_prose_quotes_its_tables_exactly():
    pages = quotes.default_files()
    assert "reports/README.md" in pages and "reports/privacy/README.md" in pages
    for name in pages:
        text = (quotes.ROOT / name).read_text()
        assert quotes.check(text) == [], f"{name} has stale numbers: run python -m fedbench.report.quotes --write"


def test_a_quote_reads_one_row_and_column_and_a_stale_one_is_found(tmp_path, monkeypatch):
    monkeypatch.setattr(quotes, "ROOT", tmp_path)
    (tmp_path / "t.csv").write_text('group,final acc,rounds to target\n"lr=0.1, model=mlp",0.91234,41.0\n'
                                    '"lr=0.15, model=mlp",0.9,50.0\n')
    (tmp_path / "r.json").write_text('{"results": [{"ratio": 1.2345}]}')
    good = ("<!--q t.csv | lr=0.1 | final acc | .3f -->0.912<!--/q--> in <!--q t.csv | model=mlp, lr=0.15 | "
            "rounds to target | .0f -->50<!--/q--> rounds, <!--q r.json | results.0.ratio | - | x -->1.23x<!--/q-->")
    assert quotes.check(good) == []
    stale = good.replace("-->0.912<", "-->0.95<")
    assert quotes.check(stale) == [("t.csv | lr=0.1 | final acc | .3f ", "0.95", "0.912")]
    assert quotes.rewrite(stale) == good
    with pytest.raises(quotes.QuoteError, match="2 rows match 'model=mlp'"):
        quotes.render("t.csv | model=mlp | final acc | .3f")
