"""summary.py: the review page and the model cards, as the Markdown a reviewer reads.

Expected texts are written out by hand from small inputs: a changed word, a swapped cell or a
lost section is a failure here, not only in someone's browser.
"""

from __future__ import annotations

from stages.shared.review.summary import (
    checks_text,
    data_rows,
    flatten,
    fmt,
    headline_rows,
    model_card,
    model_section,
    summary_page,
    table,
)

SCORES = {
    "test_images": 12,
    "positives": 7,
    "skipped": 2,
    "ap50": 0.91234,
    "mean_iou": 0.7,
    "presence_accuracy": 0.75,
    "ci95": {"ap50": {"low": 0.8, "high": 0.95}},
    "baseline": {"mean_box": {"ap50": 0.1, "mean_iou": 0.25}},
    "slices": {
        "size": {"small": {"images": 3, "mean_iou": 0.5, "ci95": {"mean_iou": None}}},
        "negatives": {
            "images": 5,
            "false_positive_rate": 0.2,
            "ci95": {"fpr": {"low": 0.0, "high": 0.6}},
        },
    },
    "behaviour": {"flip": {"agreement": 0.9, "iou": 0.8}, "jpeg": {"agreement": 1.0, "iou": 0.95}},
}
META = {
    "params": {"backbone": "plain_cnn", "epochs": 3, "learning_rate": 0.001, "verbose": 0},
    "val_iou": 0.71,
    "val_loss": 0.5,
    "image_size": 48,
    "seed": 7,
    "manifest_md5": "0123456789abcdef",
    "backbone": "plain_cnn",
    "checks": {
        "first_batch": {
            "loss": "presence loss",
            "first_batch": 0.69,
            "expected_from_prior": 0.6,
            "ratio": 1.15,
            "ok": True,
            "within_factor": 3,
        }
    },
}


def test_cells_tables_and_flattened_params():
    assert [fmt(None), fmt(0.123456), fmt(0.0001234567), fmt(2.0), fmt(3), fmt("x")] == [
        "none",
        "0.1235",
        "0.0001235",
        "2",
        "3",
        "x",
    ]
    assert table(("a", "b"), [(1, None), ("x", 0.5)]) == (
        "| a | b |\n| --- | --- |\n| 1 | none |\n| x | 0.5 |"
    )
    assert flatten({"a": 1, "b": {"c": 2, "d": {"e": 3}}}) == [("a", 1), ("b.c", 2), ("b.d.e", 3)]
    assert data_rows({"splits": {"train": 5, "test": 2}, "classes": {"cat": 4, "dog": 3}}) == [
        ("train images", 5),
        ("test images", 2),
        ("classes", "cat, dog"),
        ("files skipped by split", 0),
    ]


def test_headline_rows_carry_intervals_baselines_and_top_k():
    scores = {"accuracy": 0.9, "log_loss": 0.3, "top_3_accuracy": 1.0, "top_2_accuracy": 0.95}
    scores |= {"ci95": {"accuracy": {"low": 0.8, "high": 0.96}}}
    scores |= {"baseline": {"majority": {"accuracy": 0.4}, "prior": {"log_loss": 1.1}}}
    assert headline_rows("classifier", scores) == [
        ("accuracy", "0.9 (95% CI 0.8–0.96)", "0.4 (majority)"),
        ("log_loss", 0.3, "1.1 (prior)"),
        ("top_2_accuracy", 0.95, "-"),
        ("top_3_accuracy", 1.0, "-"),
    ]


def test_checks_text_for_a_first_batch_and_each_kind_of_debug_run():
    beyond = {**META["checks"]["first_batch"], "ok": False, "ratio": 9.2}
    assert checks_text({"checks": {"first_batch": beyond}}) == (
        "First-batch check: presence loss 0.69 at initialisation, 0.6 expected from the data's"
        " prior (9.2×, BEYOND 3×)."
    )
    overfit = {"mode": "overfit", "passed": False, "final_loss": 0.5, "steps": 40, "threshold": 0.1}
    assert checks_text({"debug": overfit}) == (
        "**Debug run (`debug: overfit`), not a trained model**: one fixed batch, train loss 0.5"
        " after 40 steps, threshold 0.1: FAILED."
    )
    assert checks_text({"debug": {**overfit, "passed": True}}).endswith("threshold 0.1: passed.")
    assert checks_text({"debug": {"mode": "fast", "batches_per_epoch": 2}}) == (
        "**Debug run (`debug: fast`), not a trained model**: one epoch of 2 batches, to check"
        " the plumbing."
    )
    assert checks_text({}) == ""


def test_a_model_section_in_full():
    figures = [("Detector training", "detector_training.png")]
    assert model_section("detector", SCORES, META, figures, extra="Extra text.") == "\n\n".join(
        [
            "## Detector",
            "Test split: 12 images, 7 with an object; 2 unreadable, skipped.",
            "| test metric | value | input-independent baseline |\n| --- | --- | --- |\n"
            "| ap50 | 0.9123 (95% CI 0.8–0.95) | 0.1 (mean_box) |\n"
            "| mean_iou | 0.7 | 0.25 (mean_box) |\n"
            "| presence_accuracy | 0.75 | - |",
            "| best val score | value |\n| --- | --- |\n| val_iou | 0.71 |\n| val_loss | 0.5 |",
            "Metrics by slice:\n\n| slice | test images | metric | value |\n"
            "| --- | --- | --- | --- |\n| size: small | 3 | mean_iou | 0.5 |\n"
            "| negatives | 5 | false-positive rate | 0.2 (95% CI 0–0.6) |",
            "Behaviour on transformed test images:\n\n| check | agreement | iou |\n"
            "| --- | --- | --- |\n| flip | 0.9 | 0.8 |\n| jpeg | 1 | 0.95 |",
            "| param | value |\n| --- | --- |\n| backbone | plain_cnn |\n| epochs | 3 |\n"
            "| learning_rate | 0.001 |\n| image_size | 48 |\n| seed | 7 |\n"
            "| train manifest md5 | 0123456789ab |",
            "First-batch check: presence loss 0.69 at initialisation, 0.6 expected from the"
            " data's prior (1.15×, within 3×).",
            "Extra text.",
            "![Detector training](figures/detector/detector_training.png)",
        ]
    )
    bare = model_section("classifier", {"test_images": 4}, {}, [])
    assert bare.startswith("## Classifier\n\nTest split: 4 images.\n\n| test metric |")


def test_the_page_puts_warnings_first_and_ends_with_a_newline():
    page = summary_page(["## A", "## B"], warnings=["data changed"])
    assert page.startswith("**Warning: data changed**\n\n# Model review\n\nWritten by the `plot`")
    assert page.endswith("train presence rate.\n\n## A\n\n## B\n")
    assert summary_page(["## A"]).startswith("# Model review\n\n")


def test_a_model_card_in_full():
    card = model_card(
        "detector",
        {"ap50": 0.9},
        META,
        {"splits": {"train": 8}, "classes": {}, "skipped": {"count": 1}},
    )
    sections = card.split("\n\n## ")
    assert sections[0] == (
        "# Model card: detector\n\n`models/detector.keras` (plain_cnn, input 48×48 RGB pixels"
        " in [0, 255]; the model normalises them itself). Written by the `plot` stage from"
        " `models/detector.json` and the reports of this revision."
    )
    assert sections[1].startswith("Intended use\n\nSays whether an image holds the object")
    assert sections[2].startswith("Limitations\n\nTrained and tested on the data below only")
    assert sections[3] == (
        "Data\n\n|  | value |\n| --- | --- |\n"
        "| train images | 8 |\n| classes |  |\n| files skipped by split | 1 |\n\n"
        "Train manifest md5: `0123456789abcdef`; seed 7."
    )
    assert sections[4] == (
        "Test metrics\n\n| metric | value | input-independent baseline |\n"
        "| --- | --- | --- |\n| ap50 | 0.9 | - |"
    )
    assert sections[5] == (
        "Training params\n\n| param | value |\n| --- | --- |\n| backbone | plain_cnn |\n"
        "| epochs | 3 |\n| learning_rate | 0.001 |\n| verbose | 0 |"
    )
    assert sections[6].startswith("Checks\n\nFirst-batch check: presence loss 0.69")
    assert sections[6].endswith("(1.15×, within 3×).")
    assert sections[7] == (
        "Provenance\n\nnot recorded: dvc.lock does not describe these weights (trained outside"
        " `dvc repro`, or the lock is not this run's)\n"
    )
    assert len(sections) == 8
    trained_from = {
        "data": {"data/augmented/detection": "d" * 32 + ".dir", "pretrained": "p" * 32 + ".dir"},
        "params_md5": "a" * 32,
        "model_md5": "b" * 32,
    }
    traced = model_card("detector", {}, META, {}, trained_from).split("\n\n## ")[7]
    assert traced.startswith("Provenance\n\nFrom the `train-detector` entry of dvc.lock")
    assert (
        "| input | md5 |\n| --- | --- |\n"
        f"| `data/augmented/detection` | `{'d' * 32}.dir` |\n"
        f"| `pretrained` | `{'p' * 32}.dir` |\n"
        f"| params of `train-detector` | `{'a' * 32}` |\n"
        f"| `models/detector.keras` (these weights) | `{'b' * 32}` |"
    ) in traced
    assert "`gto show detector`" in traced and "`--model detector@prod`" in traced
    debug = model_card("classifier", {}, {"debug": {"mode": "fast"}, "architecture": "x"}, {})
    assert debug.split("\n\n")[1] == "**Debug run (`debug: fast`): not a model to use.**"
    assert "Sorts an image into one of the classes" in debug
    assert (
        "## Checks\n\n**Debug run (`debug: fast`), not a trained model**: one"
        " epoch of None batches, to check the plumbing.\n\n## Provenance"
    ) in debug
    assert "## Checks\n\nnone recorded\n\n## Provenance" in model_card("classifier", {}, {}, {})


def test_classifier_slices_follow_negatives_and_carry_their_intervals():
    scores = {
        "test_images": 9,
        "slices": {
            "negatives": {"images": 2, "false_positive_rate": 0.5},
            "source size": {
                "small": {
                    "images": 4,
                    "accuracy": 0.75,
                    "ci95": {"accuracy": {"low": 0.5, "high": 1.0}},
                },
                "large": {"images": 5, "accuracy": 0.8},
            },
        },
    }
    section = model_section("classifier", scores, {}, [])
    assert (
        "| negatives | 2 | false-positive rate | 0.5 |\n"
        "| source size: small | 4 | accuracy | 0.75 (95% CI 0.5–1) |\n"
        "| source size: large | 5 | accuracy | 0.8 |"
    ) in section
    assert "Behaviour" not in section and "best val score" not in section
    assert "| train manifest md5 |  |" in section  # none recorded: an empty cell


def test_the_page_introduction_word_for_word():
    assert summary_page([]) == (
        "# Model review\n\nWritten by the `plot` stage from the reports of this revision."
        " Compare revisions with `dvc metrics diff --md` and `dvc plots diff`; the headline"
        " test metrics are in `reports/eval/<model>/metrics.json`, the rest in `detail.json`"
        " beside it. Baselines ignore the image:"
        " `majority` always answers the most frequent train class, `prior` its train"
        " frequencies, `mean_box` the mean train box at the train presence rate.\n"
    )
    assert fmt(0.0009) == "0.0009" and fmt(0.012345) == "0.0123" and fmt(1.23456) == "1.2346"
    card = model_card("classifier", {}, {"architecture": "simple_cnn", "backbone": "x"}, {})
    assert "`models/classifier.keras` (simple_cnn, input" in card
