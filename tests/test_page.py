"""results/report.html: built from fabricated runs, checked with html.parser (well-formed, every
table present, every image decodes) and rendered in Debian's headless chromium (skipped where it
is not installed, required in CI); and the report rules run by Snakemake on fabricated training
outputs."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image as mpimg
import pandas as pd
import pytest

import browser
from conftest import prepare_workdir, require, run_snakemake
from figure4_fixtures import fabricate_figure4_home
from report_fixtures import (BACKBONES, EXPERIMENTS, HOMES, SUPERVISIONS, all_runs, fabricate,
                             fabricate_benchmarks, fake_map, write_run)
from vicokd.experiments import figure3_runs
from vicokd.report import claims as cl
from vicokd.report import figures as fg
from vicokd.report import page as pg
from vicokd.report import readings as rd
from vicokd.report import runtimes as rt
from vicokd.report import tables as tb

REPO = Path(__file__).resolve().parents[1]
TABLE_IDS = {"claims", "table1", "table1-vs-paper", "table1-frame", "table1-best-epoch",
             "paper-table1",
             "table1-share", "table1-frame-share", "table1-spread", "table2",
             "paper-table2", "table3", "paper-table3", "table4", "paper-table4", "runtimes-summary",
             "runtimes"}
VOID = {"meta", "img", "br", "hr", "input", "link", "col", "source", "wbr"}
REPORT_RULES = ["table1", "table2", "table3", "table4", "figure3", "loss_terms", "figure4_home",
                "figure4", "timelines", "report", "all"]


class Checker(HTMLParser):
    """Collects problems (unbalanced tags), table ids, image sources and external references."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.tables, self.images, self.external = [], [], set(), [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.tables.add(a.get("id"))
        if tag == "img":
            self.images.append(a.get("src", ""))
        for key in ("src", "href"):
            if key in a and not str(a[key]).startswith(("data:", "#")):
                self.external.append(a[key])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


def check_page(text: str, images: int = 2) -> Checker:
    """`images`: Figure 3 twice, plus Figure 4 and the timelines when the page has them."""
    c = Checker()
    c.feed(text)
    c.close()
    assert text.startswith("<!DOCTYPE html>")
    assert not c.errors and not c.stack, (c.errors, c.stack)
    assert TABLE_IDS <= c.tables, TABLE_IDS - c.tables
    assert not c.external, c.external                     # self-contained
    assert len(c.images) == images
    for src in c.images:
        head, data = src.split(",", 1)
        assert head == "data:image/png;base64"
        img = mpimg.imread(io.BytesIO(base64.b64decode(data)), format="png")
        assert img.ndim == 3 and img.shape[0] > 100
    return c


def build_from(root: Path, skip=()) -> str:
    fabricate(root, skip=skip)
    fabricate_benchmarks(root)
    runs = [f"{e}/{b}/{r}" for e, b, r in all_runs()]
    metrics = tb.load_metrics(root / "results" / r / "metrics.json" for r in runs)
    probes = tb.load_probes(root / "results" / env / "probe.json" for env in HOMES)
    curves = fg.load_curves(root / "results" / r / "curve.csv" for r in figure3_runs(HOMES, SUPERVISIONS, 0))
    figs = {}
    for key, column in (("figure3", "test_map"), ("figure3_frame", "test_frame_map")):
        fg.plot_figure3(curves, root / f"{key}.png", HOMES, SUPERVISIONS, 0, column, "synthetic",
                        metrics, probes)
        figs[key] = (root / f"{key}.png").read_bytes()
    ref = cl.read_reference(REPO / "workflow" / "reference" / "paper_multisensor_home.csv")
    return pg.build_report(tables_from(metrics, probes, root), figs, ref, EXPERIMENTS, "synthetic",
                           0, {"experiments": EXPERIMENTS, "student": {"tau": 2.0}},
                           rt.collect_benchmarks(root / "benchmarks" / "results"))


def tables_from(metrics, probes, root: Path) -> dict:
    """The tables as the table rules write them (results/*.csv) and the report reads them."""
    grid = (HOMES, BACKBONES, EXPERIMENTS["methods"], SUPERVISIONS)
    longs = {f"table1{suffix}": tb.table1_tidy(tb.table1_long(metrics, *grid, 0, key, probes), key)
             for suffix, key in (("", "map"), ("_frame", "frame_map"),
                                 ("_best_epoch", "best_epoch_map"))}
    longs["table2"] = tb.table2_long(metrics, HOMES, BACKBONES, SUPERVISIONS, EXPERIMENTS["seeds"])
    longs["table3"] = tb.table3_long(metrics, HOMES, BACKBONES)
    longs["table4"] = tb.table4_long(metrics, HOMES, EXPERIMENTS["ablations"], SUPERVISIONS)
    tables = {}
    root.mkdir(parents=True, exist_ok=True)
    for key, long in longs.items():
        tb.write_table(long, root / f"{key}.csv")
        tables[key] = tb.read_table(root / f"{key}.csv")
    return tables


def test_report_page_is_well_formed_and_complete(tmp_path):
    page = build_from(tmp_path, skip={("home1", "multiasl", "vicokd-frame-seed0")})
    check_page(page)
    assert "SYNTHETIC" in page and "Published figures of the ViCoKD paper" in page
    assert "tau: 2.0" in page                                   # the config is shown
    assert '<span class="missing">missing</span>' in page       # a missing run, marked
    assert "<b>76.83</b> (+13.59)" in page                      # the paper's bold, beside ours
    assert "train students" in page and "train ablations" in page and "decode" in page
    check_yardsticks(page)
    # the authors' protocol, its own labelled table: the best test epoch, not the last
    best = page[page.index('id="table1-best-epoch"'):]
    best = best[:best.index("</table>")]
    teacher = fake_map("home1", "multiasl", "teacher")
    assert f"{teacher + 1.5:.2f}" in best and f">{teacher:.2f}<" not in best
    assert "best test epoch" in page and "optimistic" in page


def check_yardsticks(page: str) -> None:
    """The page reads Table 1 against the random-score band and the linear probe."""
    assert "Linear probe, audio+video" in page and "Linear probe, video" in page
    assert "Random scores, mean (95 % band) [%], sequence level" in page
    assert "Random scores, mean (95 % band) [%], frame level" in page
    assert "Mean class prevalence" in page and "(model − random) / (probe − random)" in page
    assert "differences exceed the spread" in page


def test_spread_verdicts_use_table2s_seeds(tmp_path):
    vals = {}
    for k in range(3):
        vals[("home1", "multiasl", f"student-frame-seed{k}")] = 50.0 + k          # std 1
        vals[("home1", "multiasl", f"vicokd-frame-seed{k}")] = 60.0 + 2 * k       # std 2
    for k, v in enumerate((52.5, 54.5, 50.5)):                                    # std 2
        vals[("home1", "multiasl", f"cokd-frame-seed{k}")] = v                    # +2.5 < 3
    vals[("home1", "multiasl", "logitkd-frame-seed0")] = 46.0                     # -4 > 3
    fabricate(tmp_path, vals)
    runs = [f"{e}/{b}/{r}" for e, b, r in all_runs()]
    metrics = tb.load_metrics(tmp_path / "results" / r / "metrics.json" for r in runs)
    t1 = tb.table1_long(metrics, HOMES, ["multiasl"], EXPERIMENTS["methods"], SUPERVISIONS)
    t2 = tb.table2_long(metrics, HOMES, ["multiasl"], SUPERVISIONS, [0, 1, 2])
    v = rd.spread_verdicts(t1, t2).set_index(["home", "method", "backbone", "supervision"])
    assert v.loc[("home1", "vicokd", "multiasl", "frame"), "spread"] == pytest.approx(3.0)
    assert v.loc[("home1", "vicokd", "multiasl", "frame"), "exceeds"]             # +10
    assert not v.loc[("home1", "cokd", "multiasl", "frame"), "exceeds"]
    assert v.loc[("home1", "logitkd", "multiasl", "frame"), "exceeds"]
    t2_one_seed = tb.table2_long(metrics, HOMES, ["multiasl"], SUPERVISIONS, [0])
    assert rd.spread_verdicts(t1, t2_one_seed)["exceeds"].isna().all()            # std n/a
    table = rd.spread_table(t1, rd.spread_verdicts(t1, t2), HOMES, ["multiasl"], SUPERVISIONS)
    assert table.loc[table["Method"] == "CoKD", "MultiASL AV_F→V_F"].iloc[0] == "+2.50 (within 3.00)"


def test_benchmarks_summary(tmp_path):
    fabricate_benchmarks(tmp_path)
    (tmp_path / "benchmarks" / "results" / "broken.tsv").write_text("no header here\n")
    bench = rt.collect_benchmarks(tmp_path / "benchmarks" / "results")
    assert len(bench) == 5                                      # the broken file is left out
    summary = rt.benchmark_summary(bench).set_index("stage")
    assert summary.loc["train teacher", "total [s]"] == "100.0"
    assert summary.loc["all stages (sum of job times)", "total [s]"] == "232.5"
    assert rt.benchmark_summary(rt.collect_benchmarks(tmp_path / "nowhere")).empty


def check_rendered(seen: dict, images: int = 2) -> None:
    """What chromium rendered of a report: every table laid out with rows, every figure
    decoded and shown (`images`: as in check_page)."""
    tables = {t["id"]: t for t in seen["tables"]}
    assert TABLE_IDS <= set(tables), TABLE_IDS - set(tables)
    empty = [tid for tid in TABLE_IDS if tables[tid]["rows"] < 2 or tables[tid]["shown"] <= 0]
    assert not empty, f"tables not rendered with rows: {empty}"
    assert len(seen["images"]) == images
    broken = [i for i, img in enumerate(seen["images"]) if not img["loaded"] or img["shown"] <= 0]
    assert not broken, f"images not rendered: {broken} of {seen['images']}"
    assert all(img["width"] > 100 and img["height"] > 100 for img in seen["images"])


def test_report_renders_in_headless_chromium(tmp_path):
    require(browser.missing())
    page = tmp_path / "report.html"
    page.write_text(build_from(tmp_path))
    seen, console = browser.render(page, tmp_path)
    assert not console, console
    check_rendered(seen)
    code, dom, _ = browser.open_page(page, tmp_path)
    assert code == 0 and all(f'id="{tid}"' in dom for tid in TABLE_IDS)
    # The checks see what they look for: a broken figure, a page error.
    text = page.read_text()
    at = text.index("data:image/png;base64,") + len("data:image/png;base64,")
    (tmp_path / "broken.html").write_text(text[:at] + "AAAA" + text[at + 40:])
    seen, _ = browser.render(tmp_path / "broken.html", tmp_path)
    assert [img["loaded"] for img in seen["images"]] == [False, True]
    with pytest.raises(AssertionError, match="images not rendered"):
        check_rendered(seen)
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>undefinedFn()</script></body></html>")
    assert any("undefinedFn" in ln for ln in browser.open_page(bad, tmp_path)[2])


def test_report_rules_on_fabricated_training_outputs(tmp_path):
    """The six rules run by Snakemake: only they are allowed, so the fabricated metrics and
    curves count as source files whether or not the training rules are in the workflow."""
    work = prepare_workdir(tmp_path)
    for i, env in enumerate(HOMES):          # what Figure 4 and the timelines read
        fabricate_figure4_home(work, env, seed=i, views=2, n_seq=6)
    fabricate(work, exp=EXPERIMENTS)
    write_run(work, "home2", "multitsf", "dualkd-sequence-seed0", None)   # a run with no mAP
    fabricate_benchmarks(work)
    run_snakemake(work, "results/report.html", config=work / "config.yaml",
                  extra_args=["--allowed-rules", *REPORT_RULES])
    res = work / "results"
    for name in ("table1.csv", "table1.md", "table1_frame_map.csv", "table2.csv", "table3.csv",
                 "table4.csv", "table2.md", "table3.md", "table4.md", "figure3.png",
                 "figure3_frame_map.png", "figure4.png", "figure4.json", "home1/figure4.png",
                 "home2/figure4.json", "timelines/index.json", "report.html"):
        assert (res / name).stat().st_size > 0, name
    for name in ("table1.csv", "table1_frame_map.csv", "table2.csv", "table3.csv", "table4.csv"):
        assert not (res / name).read_text().startswith("#"), name
        pd.read_csv(res / name)                          # plain CSV: default arguments read it
    t1 = pd.read_csv(res / "table1.csv")
    assert len(t1) == 2 * 3 * 2 * 9                      # homes x backbones x supervisions x rows
    gone = t1[(t1["home"] == "home2") & (t1["backbone"] == "multitsf") & (t1["method"] == "dualkd")
              & (t1["supervision"] == "sequence")]
    assert gone["value"].isna().all()
    assert t1["in_random_band"].dtype == bool and t1["reference"].sum() == 24
    md = (res / "table1.md").read_text()
    assert "Seed 0 for every method" in md and "home2/multitsf/dualkd-sequence-seed0" in md
    assert "Linear probe, video" in md and "Random scores, mean (band)" in md
    for name in ("table2.md", "table3.md", "table4.md"):
        assert "Random scores, mean (band)" in (res / name).read_text()
    page = (res / "report.html").read_text()
    timelines = json.loads((res / "timelines" / "index.json").read_text())
    assert len(timelines) == 2 * 2                        # report.timelines: the first 2 per home
    checker = check_page(page, images=2 + 1 + len(timelines))
    assert {"figure4-share", "figure4-differences"} <= checker.tables
    check_yardsticks(page)
    assert (work / "logs" / "report" / "report.log").exists()
    assert (work / "benchmarks" / "results" / "home1" / "figure4.tsv").exists()
